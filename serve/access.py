"""Who may call what, the request id of a call, and how a failure becomes a refusal.

Shared by the gRPC methods of :class:`~serve.ingress.Ingress` and the HTTP routes of
:mod:`serve.routes`, so both transports apply the same rules.
"""

from __future__ import annotations

import hmac
import logging
from typing import Annotated, Literal

from fastapi import Header
from ray import serve

from cluster.settings import Settings
from serve.errors import Internal, ServeError, Unauthenticated, as_serve_error

logger = logging.getLogger(__name__)

#: ``open``: anyone; ``read``: the API key outside development; ``write``: the API key always.
Access = Literal["open", "read", "write"]

API_KEY_METADATA = "x-api-key"
#: The ``x-api-key`` header of HTTP routes (module level: FastAPI resolves annotations here).
ApiKeyHeader = Annotated[str | None, Header(alias=API_KEY_METADATA)]


def check_api_key(given: str | None, *, access: Access, settings: Settings) -> None:
    """Refuse a call without the right key: writes always need it, reads outside development.

    Raises:
        Unauthenticated: the key is missing or wrong, or the server has none configured for a
            call that needs one.
    """
    if access == "open" or (access == "read" and settings.env == "development"):
        return
    configured = settings.api_key.get_secret_value() if settings.api_key else ""
    if not configured:
        raise Unauthenticated("this call needs an API key, and the server has none (BETML_API_KEY)")
    if not given or not hmac.compare_digest(given.encode(), configured.encode()):
        raise Unauthenticated(f"missing or invalid {API_KEY_METADATA} metadata")


def request_id() -> str:
    """Serve's id of the current request (the client's ``request_id`` metadata when it sent one)."""
    try:
        return str(serve.context._get_serve_request_context().request_id or "")
    except Exception:  # noqa: BLE001 - only for logs
        return ""


def refusal(error: Exception, method: str, request_id: str) -> ServeError:
    """``error`` as the refusal a client gets; a bug (INTERNAL) is logged with its traceback."""
    refused = as_serve_error(error)
    if isinstance(refused, Internal):
        logger.error(
            "%s failed", method, exc_info=error, extra={"request_id": request_id, "rpc": method}
        )
    return refused
