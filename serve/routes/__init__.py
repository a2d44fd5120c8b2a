"""The HTTP API (``/api/v1``, OpenAPI from FastAPI), one router per area.

Each module exposes ``router(ingress) -> APIRouter``; :func:`serve.ingress.build_http_app`
includes them all. Routes answer through :func:`serve.routes.common.answer`, which checks the API
key and turns failures into the HTTP status of their kind, as the gRPC methods do.
"""
