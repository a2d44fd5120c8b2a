"""betml's Serve application: ``serve run configs/serve/local.yaml`` or ``betml serve up``.

How to run::

    serve run configs/serve/local.yaml      # import_path: serve.app:build_app, with args
    betml serve up                           # the same file, through betml's Ray connection

The application is an :class:`~serve.ingress.Ingress` (HTTP on 8000, ``betml.v1.MLService`` on
9000 through ``grpc_options.grpc_servicer_functions``) composed with one
:class:`~serve.models.OutcomeModel` deployment per entry of ``args.models`` (``ensemble``,
``classifier``) and the :class:`~serve.agent.StrategyAgent` deployment (``agent``), reached
through DeploymentHandles. Nothing is loaded here: replicas read their
settings, open the store and load models when they start.

This module keeps its annotations evaluated (no ``from __future__ import annotations``): Serve
reads ``build_app``'s parameter type to validate the YAML ``args`` into :class:`ServeArgs`.
"""

from typing import Any

from ray.serve import Application

from serve.agent import StrategyAgent
from serve.config import AGENT_DEPLOYMENT, ServeArgs
from serve.ingress import Ingress
from serve.models import OutcomeModel, RegistryLoader

#: The servicer registration Serve's gRPC proxy needs (``grpc_options.grpc_servicer_functions``).
GRPC_SERVICER_FUNCTION = "serve.proto.betml.v1.ml_service_pb2_grpc.add_MLServiceServicer_to_server"
DEFAULT_HTTP_PORT = 8000
DEFAULT_GRPC_PORT = 9000


def build_app(args: ServeArgs) -> Application:
    """The application: the ingress bound to a handle of each outcome-model deployment and of
    the strategy agent's (``agent``, unless ``args.agent`` is null).

    Args:
        args: what to serve (``args:`` of the Serve config file, validated by Serve).
    """
    if not isinstance(args, ServeArgs):  # a plain dict when called outside Serve
        args = ServeArgs.model_validate(args)
    registry = RegistryLoader()
    model: Any = OutcomeModel  # a serve Deployment (mypy sees the class)
    ingress: Any = Ingress
    models = {
        name: model.options(name=name, **_options(model, args)).bind(deployment, registry)
        for name, deployment in args.models.items()
    }
    if args.agent is not None:
        agent: Any = StrategyAgent
        options = _options(agent, args)
        models[AGENT_DEPLOYMENT] = agent.options(name=AGENT_DEPLOYMENT, **options).bind(
            args.agent, registry
        )
    application: Application = ingress.options(**_options(ingress, args)).bind(args, models)
    return application


def _options(deployment: Any, args: ServeArgs) -> dict[str, Any]:
    if not args.runtime_env:
        return {}
    actor = dict(deployment.ray_actor_options or {})
    return {"ray_actor_options": {**actor, "runtime_env": args.runtime_env}}
