"""What every router shares: answering a call with the API-key check and the error mapping."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from google.protobuf.json_format import ParseError
from google.protobuf.message import Message

from serve import http
from serve.access import Access, ApiKeyHeader, check_api_key, refusal, request_id
from serve.errors import BadRequest

if TYPE_CHECKING:
    from serve.ingress import Ingress

__all__ = ["Access", "ApiKeyHeader", "answer", "answer_proto"]


async def answer(
    ingress: Ingress,
    call: Callable[[], Awaitable[Any]],
    key: str | None,
    access: Access = "read",
    *,
    route: str = "http",
) -> Any:
    """Check ``key`` for ``access``, await ``call`` and return its result; a failure becomes the
    JSON error response of its kind (4xx naming the field, 404, 503, 401...)."""
    rid = request_id()
    try:
        check_api_key(key, access=access, settings=ingress.settings)
        return await call()
    except ParseError as e:
        return http.error_response(BadRequest.of("body", str(e)))
    except Exception as e:  # noqa: BLE001 - every failure becomes a status
        return http.error_response(refusal(e, route, rid))


async def answer_proto(
    ingress: Ingress,
    call: Callable[[], Awaitable[Message]],
    key: str | None,
    access: Access = "read",
    *,
    route: str = "http",
) -> Any:
    """:func:`answer` for a call that returns a proto message: the message as JSON."""

    async def as_json() -> Any:
        return http.from_proto(await call())

    return await answer(ingress, as_json, key, access, route=route)
