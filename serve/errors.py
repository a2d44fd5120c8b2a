"""What serving answers when it cannot: one error class per gRPC status, with its rich details.

Handlers raise these (or betml's own :class:`~betting.errors.InvalidInput` and
:class:`~betting.errors.NotFound`, converted by :func:`as_serve_error`); the gRPC methods turn
them into a status code, a ``field: reason`` message and a ``google.rpc.Status`` in the
``grpc-status-details-bin`` trailer (README, "gRPC contract"), and the HTTP routes into a status
code and a JSON body with the same facts. Anything else is a bug and answers INTERNAL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from betting.errors import BetmlError, InvalidInput, NotFound

#: The trailer of the standard rich error model.
STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class FieldViolation:
    """One bad field: its path in the request and why it is refused."""

    field: str
    description: str


class ServeError(BetmlError):
    """Root of the errors a request can get; ``code`` is its gRPC status."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    http_status: int = 500

    def details(self) -> list[Any]:
        """The google.rpc detail messages of the trailer."""
        return []

    def http_body(self) -> dict[str, Any]:
        return {"code": self.code.name, "message": str(self)}


class BadRequest(ServeError):
    """INVALID_ARGUMENT: one or more fields of the request are wrong."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    http_status = 422

    def __init__(self, violations: list[FieldViolation]) -> None:
        if not violations:
            raise ValueError("a BadRequest needs at least one field violation")
        self.violations = violations
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in violations))

    @classmethod
    def of(cls, field: str, description: str) -> BadRequest:
        return cls([FieldViolation(field, description)])

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.violations,)

    def details(self) -> list[Any]:
        return [
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in self.violations
                ]
            )
        ]

    def http_body(self) -> dict[str, Any]:
        return {
            **super().http_body(),
            "field_violations": [
                {"field": v.field, "description": v.description} for v in self.violations
            ],
        }


class ResourceNotFound(ServeError):
    """NOT_FOUND: an event, market or model the request names does not exist."""

    code = grpc.StatusCode.NOT_FOUND
    http_status = 404

    def __init__(self, resource_type: str, resource_name: str, message: str) -> None:
        self.resource_type = resource_type
        self.resource_name = resource_name
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.resource_type, self.resource_name, str(self))

    def details(self) -> list[Any]:
        return [
            error_details_pb2.ResourceInfo(
                resource_type=self.resource_type,
                resource_name=self.resource_name,
                description=str(self),
            )
        ]

    def http_body(self) -> dict[str, Any]:
        return {
            **super().http_body(),
            "resource_type": self.resource_type,
            "resource_name": self.resource_name,
        }


class ModelUnavailable(ServeError):
    """UNAVAILABLE: the model the request needs is loading (or failed to load); retry."""

    code = grpc.StatusCode.UNAVAILABLE
    http_status = 503

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (str(self), self.retry_after_s)

    def details(self) -> list[Any]:
        seconds = max(self.retry_after_s, 0.0)
        delay = duration_pb2.Duration(seconds=int(seconds), nanos=int(seconds % 1 * 1e9))
        return [error_details_pb2.RetryInfo(retry_delay=delay)]

    def http_body(self) -> dict[str, Any]:
        return {**super().http_body(), "retry_after_s": self.retry_after_s}


class FeatureVersionMismatch(ServeError):
    """FAILED_PRECONDITION: the model was built for other features than the state computes."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    http_status = 409


class Unauthenticated(ServeError):
    """UNAUTHENTICATED: the call needs a valid ``x-api-key``."""

    code = grpc.StatusCode.UNAUTHENTICATED
    http_status = 401


class Internal(ServeError):
    """INTERNAL: a bug; the message says nothing about the internals."""


def as_serve_error(error: BaseException, *, field: str | None = None) -> ServeError:
    """The :class:`ServeError` of any exception a handler let through.

    betml's :class:`InvalidInput` becomes INVALID_ARGUMENT (on ``field`` when given, else on the
    request as a whole) and :class:`NotFound` NOT_FOUND; anything else INTERNAL.
    """
    if isinstance(error, ServeError):
        return error
    if isinstance(error, InvalidInput):
        return BadRequest.of(field or "request", str(error))
    if isinstance(error, NotFound):
        return ResourceNotFound("model", field or "", str(error))
    return Internal("internal error; it is logged with the request id")


def status_details(error: ServeError) -> bytes:
    """The serialized ``google.rpc.Status`` of ``error`` for the details trailer."""
    packed = []
    for detail in error.details():
        message = any_pb2.Any()
        message.Pack(detail)
        packed.append(message)
    status = status_pb2.Status(code=error.code.value[0], message=str(error), details=packed)
    return status.SerializeToString()
