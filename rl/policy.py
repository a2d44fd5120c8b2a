"""The exported staking policy: a plain torch Q-network that serving runs without RLlib.

An exported policy is a betml artifact folder (:func:`cluster.artifacts.save_artifact` writes
it, :func:`cluster.artifacts.load_predictor` or :func:`load_policy` reads it):

* ``q_network.pt``: the state dict of :class:`QNetwork`;
* ``policy.json``: the network's shape (:class:`NetworkSpec`), the observation names and the
  :class:`~rl.env.EnvConfig` (stake ladder, features, episodes) the agent was trained with;
* ``betml_artifact.json``: family ``dqn``, this module's :class:`ExportedPolicy` as the loader,
  the feature columns and feature-schema version, the training config and holdout metrics.

The policy is greedy: the action of the highest Q-value, 0 (no bet) or a rung of the stake
ladder. This module must not import ``ray.rllib`` (serving imports it).
"""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path
from typing import Self

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from betting.errors import InvalidInput
from betting.features import FEATURE_SCHEMA_VERSION
from cluster.artifacts import ArtifactMeta, load_predictor, save_artifact
from rl.env import BettingEnv, EnvConfig, greedy_rollout, observation_names

#: The loader named in an exported policy's ``betml_artifact.json``.
PREDICTOR = "rl.policy:ExportedPolicy"
WEIGHTS_FILE = "q_network.pt"
POLICY_FILE = "policy.json"
#: Columns of :meth:`ExportedPolicy.decide`.
DECISION_OUTPUT = ["event_key", "market_key", "selection", "fraction"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}


class NetworkSpec(BaseModel):
    """The shape of a :class:`QNetwork` (RLlib's default DQN module, rebuilt in plain torch)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_observations: int = Field(ge=1)
    n_actions: int = Field(ge=2)
    hidden_layers: list[int]
    """Shared layers over the observation, each followed by the activation."""
    head_hidden_layers: list[int]
    """Hidden layers of the advantage head (and of the value head when dueling)."""
    dueling: bool
    activation: str = Field("relu", pattern="^(relu|tanh)$")


def _mlp(sizes: list[int], activation: type[nn.Module], *, last_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        if last_activation or i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class QNetwork(nn.Module):
    """Q-values of every action: an MLP encoder, an advantage head and, when dueling, a value
    head combined as ``V + A - mean(A)``."""

    def __init__(self, spec: NetworkSpec) -> None:
        super().__init__()
        self.spec = spec
        act = _ACTIVATIONS[spec.activation]
        latent = spec.hidden_layers[-1] if spec.hidden_layers else spec.n_observations
        self.encoder = _mlp([spec.n_observations, *spec.hidden_layers], act, last_activation=True)
        self.advantage = _mlp([latent, *spec.head_hidden_layers, spec.n_actions], act,
                              last_activation=False)  # fmt: skip
        self.value = (
            _mlp([latent, *spec.head_hidden_layers, 1], act, last_activation=False)
            if spec.dueling
            else None
        )

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        latent = self.encoder(observations)
        advantage = self.advantage(latent)
        if self.value is None:
            return advantage  # type: ignore[no-any-return]
        return self.value(latent) + advantage - advantage.mean(dim=-1, keepdim=True)  # type: ignore[no-any-return]

    def linear_layers(self) -> list[nn.Linear]:
        """Every linear layer in the order encoder, advantage head, value head."""
        parts = [self.encoder, self.advantage, *([self.value] if self.value is not None else [])]
        return [m for part in parts for m in part if isinstance(m, nn.Linear)]


class ExportedPolicy:
    """A trained staking policy, loaded from its artifact folder; no RLlib needed."""

    def __init__(
        self, network: QNetwork, env_config: EnvConfig, meta: ArtifactMeta | None = None
    ) -> None:
        self.network = network.eval()
        self.env_config = env_config
        self.meta = meta or ArtifactMeta(
            family="dqn", predictor=PREDICTOR, sport="", market="",
            feature_columns=list(env_config.features),
            feature_schema_version=FEATURE_SCHEMA_VERSION,
        )  # fmt: skip
        self.observation_names = observation_names(env_config)
        if len(self.observation_names) != network.spec.n_observations:
            raise InvalidInput(
                f"the network takes {network.spec.n_observations} observation entries, the "
                f"environment config gives {len(self.observation_names)}"
            )
        if len(env_config.stake_ladder) + 1 != network.spec.n_actions:
            raise InvalidInput(
                f"the network has {network.spec.n_actions} actions, the stake ladder "
                f"{env_config.stake_ladder} needs {len(env_config.stake_ladder) + 1}"
            )

    # --- acting ------------------------------------------------------------------------------

    def q_values(self, observations: np.ndarray) -> np.ndarray:
        """``[batch, actions]`` Q-values of a ``[batch, observation]`` array."""
        obs = np.asarray(observations, dtype=np.float32)
        if obs.ndim != 2 or obs.shape[1] != len(self.observation_names):
            raise InvalidInput(
                f"observations must have shape [batch, {len(self.observation_names)}] "
                f"({', '.join(self.observation_names)}), got {obs.shape}"
            )
        if not np.isfinite(obs).all():
            raise InvalidInput("observations must be finite numbers")
        with torch.no_grad():
            return self.network(torch.from_numpy(obs)).numpy()  # type: ignore[no-any-return]

    def act(self, observations: np.ndarray) -> np.ndarray:
        """Greedy actions (0: no bet, i: ``stake_ladder[i - 1]``) of ``[batch, observation]``."""
        return self.q_values(observations).argmax(axis=1)

    def act_one(self, observation: np.ndarray) -> int:
        """The greedy action of one observation (what :func:`rl.env.greedy_rollout` calls)."""
        return int(self.act(np.asarray(observation)[None])[0])

    def stake_fractions(self, actions: np.ndarray) -> np.ndarray:
        """The stake fraction of the bankroll of each action."""
        return np.asarray([0.0, *self.env_config.stake_ladder])[np.asarray(actions)]

    def decide(
        self, decisions: pd.DataFrame, env_config: EnvConfig | None = None
    ) -> pd.DataFrame:  # fmt: skip
        """The stake the policy chooses on every market of a decision table.

        Each season of ``decisions`` (see :mod:`rl.decisions`) is played in the environment
        from a whole bankroll, market after market, settling each bet before the next
        (:func:`rl.env.greedy_rollout`). One row per market, in start-time order:
        ``event_key``, ``market_key``, ``selection`` (the model's highest-edge selection, the
        one the agent bets on) and ``fraction`` (of the bankroll at that point; 0: no bet).
        Markets after a ruin (the bankroll below ``ruin_fraction``) get 0.

        Args:
            decisions: a decision table.
            env_config: the environment to play in (default: the one trained in); its
                features and stake ladder must be the trained ones.
        """
        config = env_config or self.env_config
        if config.features != self.env_config.features:
            raise InvalidInput(
                f"the policy observes features {self.env_config.features}, not {config.features}"
            )
        if config.stake_ladder != self.env_config.stake_ladder:
            raise InvalidInput(
                f"the policy stakes {self.env_config.stake_ladder}, not {config.stake_ladder}"
            )
        env = BettingEnv(
            {"decisions": decisions, "env": config.model_copy(update={"episode": "season"})}
        )
        fraction = np.zeros(len(env.markets))
        for season in env.seasons:
            played = greedy_rollout(env, self.act_one, season=season)
            fraction[played["market"].to_numpy()] = played["stake"].to_numpy()
        out = env.markets.rows[DECISION_OUTPUT[:-1]].copy()
        out["fraction"] = fraction
        return out.reset_index(drop=True)

    # --- artifact ----------------------------------------------------------------------------

    def save_files(self, folder: Path) -> None:
        """Write ``q_network.pt`` and ``policy.json`` into ``folder``."""
        torch.save(self.network.state_dict(), Path(folder) / WEIGHTS_FILE)
        description = {
            "network": self.network.spec.model_dump(),
            "observation_names": self.observation_names,
            "env": self.env_config.model_dump(),
        }
        (Path(folder) / POLICY_FILE).write_text(json.dumps(description, indent=2))

    @classmethod
    def load_files(cls, folder: Path, meta: ArtifactMeta) -> Self:
        """Rebuild the policy from a folder written by :meth:`save_files`."""
        try:
            description = json.loads((Path(folder) / POLICY_FILE).read_text())
            spec = NetworkSpec.model_validate(description["network"])
            env_config = EnvConfig.model_validate(description["env"])
        except (OSError, ValueError, KeyError) as e:
            raise InvalidInput(f"{folder}/{POLICY_FILE} is not a policy description: {e}") from e
        if description.get("observation_names") != observation_names(env_config):
            raise InvalidInput(
                f"{folder}: the policy was trained on observations "
                f"{description.get('observation_names')}, this code builds "
                f"{observation_names(env_config)}"
            )
        network = QNetwork(spec)
        state = torch.load(Path(folder) / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        network.load_state_dict(state)
        return cls(network, env_config, meta)


def save_policy(policy: ExportedPolicy, folder: Path) -> Path:
    """Write ``policy`` as an artifact folder (atomically)."""
    return save_artifact(policy, folder)  # type: ignore[arg-type]  # a policy, not a predictor


def load_policy(folder: Path | str) -> ExportedPolicy:
    """Load an exported policy, refusing one built for another feature-schema version."""
    policy = load_predictor(Path(folder))
    if not isinstance(policy, ExportedPolicy):
        raise InvalidInput(f"{folder} holds a {type(policy).__name__}, not a staking policy")
    return policy
