"""Export a trained RLlib DQN module as a plain torch policy (:mod:`rl.policy`).

The RLModule's encoder and heads are linear layers with one activation; their weights are
copied, in order, into a :class:`~rl.policy.QNetwork` of the same shape, and the copy is checked
against the module's own Q-values before it is written. Serving then loads the folder with
:func:`rl.policy.load_policy`, without RLlib.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from betting.errors import InvalidInput
from betting.features import FEATURE_SCHEMA_VERSION
from cluster.artifacts import ArtifactMeta
from rl.config import FAMILY
from rl.env import EnvConfig, observation_names
from rl.policy import PREDICTOR, ExportedPolicy, NetworkSpec, QNetwork, save_policy

#: Where an RLlib algorithm checkpoint keeps the module (``algo.save_to_path`` layout).
MODULE_IN_CHECKPOINT = Path("learner_group", "learner", "rl_module", "default_policy")
#: Largest difference allowed between the module's and the copy's Q-values.
Q_TOLERANCE = 1e-5


def _linears(part: nn.Module) -> list[nn.Linear]:
    return [m for m in part.modules() if isinstance(m, nn.Linear)]


def network_spec_of(module: Any) -> NetworkSpec:
    """The :class:`NetworkSpec` of RLlib's default DQN torch module."""
    encoder, advantage = _linears(module.encoder), _linears(module.af)
    if not encoder or not advantage:
        raise InvalidInput(f"{type(module).__name__} is not a default DQN module with MLP layers")
    activation = str(module.model_config.get("fcnet_activation", "relu")).lower()
    head_activation = str(module.model_config.get("head_fcnet_activation", "relu")).lower()
    if activation != head_activation:
        raise InvalidInput(f"encoder ({activation}) and heads ({head_activation}) must share "
                           "one activation to export")  # fmt: skip
    return NetworkSpec(
        n_observations=encoder[0].in_features, n_actions=advantage[-1].out_features,
        hidden_layers=[layer.out_features for layer in encoder],
        head_hidden_layers=[layer.out_features for layer in advantage[:-1]],
        dueling=bool(module.uses_dueling), activation=activation,
    )  # fmt: skip


def q_network_of(module: Any) -> QNetwork:
    """A plain torch copy of a DQN RLModule's online Q-network (not the target network)."""
    spec = network_spec_of(module)
    network = QNetwork(spec)
    source = _linears(module.encoder) + _linears(module.af)
    if spec.dueling:
        source += _linears(module.vf)
    target = network.linear_layers()
    if [tuple(s.weight.shape) for s in source] != [tuple(t.weight.shape) for t in target]:
        raise InvalidInput("the module's layers do not match the exported network's")
    with torch.no_grad():
        for src, dst in zip(source, target, strict=True):
            dst.weight.copy_(src.weight)
            dst.bias.copy_(src.bias)
    return network.eval()


def check_same_q_values(module: Any, network: QNetwork, observations: np.ndarray) -> float:
    """The largest difference between the module's and the network's Q-values.

    Raises:
        InvalidInput: it exceeds :data:`Q_TOLERANCE`.
    """
    obs = torch.from_numpy(np.asarray(observations, dtype=np.float32))
    with torch.no_grad():
        expected = module.compute_q_values({"obs": obs})["qf_preds"]
        got = network(obs)
    gap = float((expected - got).abs().max())
    if gap > Q_TOLERANCE:
        raise InvalidInput(f"the exported network differs from the RLlib module by {gap:.3g}")
    return gap


def export_policy(
    module: Any,
    folder: Path,
    *,
    env_config: EnvConfig,
    sport: str,
    market: str,
    config: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    check_observations: np.ndarray | None = None,
) -> Path:
    """Write the module's greedy policy as an artifact folder that :func:`rl.policy.load_policy`
    reads.

    Args:
        module: the trained DQN RLModule (``algo.get_module()`` or one loaded from a
            checkpoint with :func:`module_from_checkpoint`).
        folder: the artifact folder (replaced if it exists).
        env_config: the environment the module was trained in.
        sport: sport of the decisions.
        market: market key of the decisions.
        config: the training config, kept in ``betml_artifact.json``.
        metrics: holdout metrics, kept in ``betml_artifact.json``.
        check_observations: observations to compare the copy with the module on (default:
            random ones in the observation range).
    """
    network = q_network_of(module)
    n_obs = len(observation_names(env_config))
    if network.spec.n_observations != n_obs:
        raise InvalidInput(f"the module takes {network.spec.n_observations} observation "
                           f"entries, the environment config gives {n_obs}")  # fmt: skip
    if check_observations is None:
        rng = np.random.default_rng(0)
        check_observations = rng.normal(0.0, 1.0, size=(64, n_obs))
    check_same_q_values(module, network, check_observations)
    meta = ArtifactMeta(
        family=FAMILY, predictor=PREDICTOR, sport=sport, market=market,
        feature_columns=list(env_config.features), feature_schema_version=FEATURE_SCHEMA_VERSION,
        config=config or {}, metrics=metrics or {},
    )  # fmt: skip
    return save_policy(ExportedPolicy(network, env_config, meta), folder)


def module_from_checkpoint(checkpoint: Path | str) -> Any:
    """The DQN RLModule of an algorithm checkpoint (``algo.save_to_path``), for inference."""
    from rl.train import keep_tensorflow_out

    keep_tensorflow_out()
    from ray.rllib.core.rl_module.rl_module import RLModule

    path = Path(checkpoint) / MODULE_IN_CHECKPOINT
    if not path.is_dir():
        raise InvalidInput(f"{checkpoint} is not an RLlib algorithm checkpoint: no {path}")
    return RLModule.from_checkpoint(path)
