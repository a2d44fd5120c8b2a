"""``configs/rl/*.yaml``: what the DQN staking agent trains on, how, and how it is judged.

One pydantic model, :class:`AgentConfig`, with a docstring per field. The metric names every
training run reports (to Tune, MLflow and the live table) are the constants below, namespaced
``train/...`` (the learning loop) and ``eval/...`` (greedy play of the holdout seasons).
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cluster.sweeps import Distribution, apply_overrides
from cluster.training import DataConfig, market_slug
from rl.decisions import ModelSource
from rl.env import EnvConfig

#: Registered model family of the agent: ``betml-dqn-<sport>-<market>``.
FAMILY = "dqn"

TRAIN_ITERATION = "train/iteration"
"""Training iterations done (each samples ``min_env_steps_per_iteration`` env steps or more)."""
TRAIN_ENV_STEPS = "train/env_steps"
"""Env steps sampled so far, over the whole trial (resumes included)."""
TRAIN_EPISODES = "train/episodes"
"""Episodes finished so far."""
TRAIN_EPISODE_RETURN = "train/episode_return"
"""Mean return (log growth of the bankroll, exploring) of the latest episodes (RLlib smooths
over the last 100)."""
TRAIN_ENV_STEPS_PER_S = "train/env_steps_per_s"
"""Env steps per second of wall time in the iteration (sampling and learning)."""
EVAL_LOG_GROWTH = "eval/log_growth"
"""Greedy policy on the holdout: mean over its seasons of log(final / starting bankroll)."""
EVAL_ROI = "eval/roi"
"""Greedy policy on the holdout: profit / turnover of its bets (NaN without bets)."""
EVAL_BETS = "eval/bets"
"""Greedy policy on the holdout: bets placed."""
EVAL_MAX_DRAWDOWN = "eval/max_drawdown"
"""Greedy policy on the holdout: largest fall of the bankroll from its peak (a fraction)."""
EVAL_FLAT_LOG_GROWTH = "eval/flat_log_growth"
"""Flat value betting on the same holdout markets and selections: ``evaluation.flat_stake``
of the bankroll on every selection whose model edge reaches ``data.min_edge``."""
EVAL_ITERATION = "eval/iteration"
"""The training iteration the ``eval/...`` numbers of a report were measured at."""

#: What a sweep ranks trials by (higher is better).
SWEEP_METRIC = EVAL_LOG_GROWTH
#: The lower-is-better score the registry's promotion gate compares: ``-eval/log_growth``.
REGISTRY_SCORE = "neg_log_growth"


class DQNSettings(BaseModel):
    """RLlib DQN hyperparameters (new API stack, torch): the ``dqn:`` group."""

    model_config = ConfigDict(extra="forbid")

    lr: float = Field(2.5e-4, gt=0, le=1)
    """Adam learning rate."""
    gamma: float = Field(0.0, ge=0, le=1)
    """Discount. With log-growth rewards and proportional stakes, the stake that maximises the
    expected log growth of a bet does not depend on later bets (Kelly is myopic), so 0 is the
    natural choice; higher values let the agent weigh its bankroll path (drawdown, ruin)."""
    n_step: int = Field(1, ge=1, le=50)
    """Steps of the n-step TD target (its rewards are discounted by ``gamma``)."""
    target_network_update_freq: int = Field(500, ge=1)
    """Env steps between copies of the online Q-network into the target network."""
    train_batch_size: int = Field(128, ge=1)
    """Transitions per gradient step, sampled from the replay buffer."""
    rollout_fragment_length: int = Field(8, ge=1)
    """Env steps sampled between gradient steps (more: faster, fewer updates per step)."""
    replay_capacity: int = Field(50_000, ge=100)
    """Transitions kept by the prioritized episode replay buffer."""
    prioritized_replay_alpha: float = Field(0.3, ge=0)
    """How strongly TD errors skew replay sampling (0: uniform). Rare big wins have the largest
    TD errors: strong prioritisation replays them over and over."""
    prioritized_replay_beta: float = Field(1.0, ge=0, le=1)
    """Importance-sampling correction of the skew (1: full). Below 1 the oversampled big wins
    bias the Q-values of long-odds stakes upwards and the agent learns to overbet."""
    epsilon: list[tuple[int, float]] = Field(default_factory=lambda: [(0, 1.0), (10_000, 0.02)])
    """Exploration schedule: (env step, probability of a random action), interpolated."""
    hidden_layers: list[int] = Field(default_factory=lambda: [64, 64])
    """Widths of the shared hidden layers over the observation."""
    head_hidden_layers: list[int] = Field(default_factory=lambda: [32])
    """Widths of the hidden layers of the advantage and value heads."""
    double_q: bool = True
    """Double Q-learning: the online network picks the next action, the target rates it."""
    dueling: bool = True
    """Dueling heads: Q = V + (A - mean A)."""
    num_steps_sampled_before_learning_starts: int = Field(1_000, ge=0)
    """Env steps of (random) play collected before the first gradient step."""
    min_env_steps_per_iteration: int = Field(1_000, ge=1)
    """Env steps sampled in each training iteration at least."""
    td_error_loss: Literal["huber", "mse"] = "huber"
    """Loss of the TD errors. Huber (linear beyond 1, after ``reward_scale``) damps the rare big
    wins of long-odds stakes and so leans against them; mean squared error learns the mean
    return without that lean, but its noisy Q-values drifted to the biggest stakes in our runs."""
    reward_scale: float = Field(10.0, gt=0)
    """Rewards are multiplied by this for learning only (a bet's log growth is about 1e-3:
    Q-values that small drown in Adam's steps). Reported returns are unscaled."""

    @field_validator("epsilon")
    @classmethod
    def _schedule(cls, schedule: list[tuple[int, float]]) -> list[tuple[int, float]]:
        steps = [step for step, _ in schedule]
        if not schedule or steps[0] != 0 or steps != sorted(set(steps)):
            raise ValueError(f"epsilon needs increasing steps that start at 0, got {schedule}")
        if any(not 0.0 <= value <= 1.0 for _, value in schedule):
            raise ValueError(f"epsilon values must be probabilities, got {schedule}")
        return schedule

    @field_validator("hidden_layers", "head_hidden_layers")
    @classmethod
    def _widths(cls, widths: list[int]) -> list[int]:
        if any(w < 1 for w in widths):
            raise ValueError(f"layer widths must be positive, got {widths}")
        return widths


class EvaluationConfig(BaseModel):
    """How the greedy policy is judged on the holdout seasons."""

    model_config = ConfigDict(extra="forbid")

    flat_stake: float = Field(0.01, gt=0, le=1)
    """Stake fraction of the flat value-betting baseline reported beside the agent."""


class AgentConfig(BaseModel):
    """``configs/rl/dqn.yaml``: one DQN staking agent, or a sweep of them with ``space``."""

    model_config = ConfigDict(extra="forbid")

    data: DataConfig = Field(default_factory=DataConfig)
    """Which stored events the decision table is built from (``data.holdout_seasons`` is not
    used: the agent's holdout is ``holdout_seasons``; ``data.min_edge`` is the flat
    baseline's edge)."""
    model: ModelSource = Field(default_factory=ModelSource)
    """The outcome model whose out-of-sample probabilities the agent sees."""
    env: EnvConfig = Field(default_factory=EnvConfig)
    """How the decision table becomes episodes, observations and actions."""
    holdout_seasons: int = Field(1, ge=1)
    """The latest seasons of the decision table, never trained on, that the agent is judged on."""
    dqn: DQNSettings = Field(default_factory=DQNSettings)
    """The DQN's hyperparameters."""
    iterations: int = Field(20, ge=1)
    """Training iterations of a trial."""
    checkpoint_every: int = Field(5, ge=1)
    """Evaluate on the holdout and save a checkpoint every this many iterations (and after the
    first and the last)."""
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    """How the holdout evaluation is reported."""
    seed: int = 0
    """Seed of the outcome models, the environment, exploration and the search."""
    space: dict[str, Distribution] | None = None
    """Searched DQN hyperparameters by dotted path into ``dqn`` (e.g. ``lr``, ``n_step``,
    ``target_network_update_freq``); ``betml sweep dqn`` needs it, ``betml train dqn`` ignores
    it."""
    trials: int = Field(4, ge=1)
    """Configurations a sweep tries (``--trials`` overrides)."""
    max_concurrent: int | None = Field(None, ge=1)
    """Trials at once; default: as many as the cluster has CPUs for."""
    cpus_per_trial: float = Field(1.0, gt=0)
    """CPUs reserved for each trial (torch threads of the trial)."""
    max_failures: int = Field(2, ge=0)
    """Times a crashed trial is retried from its last checkpoint."""
    run_name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """Folder of the run under ``<storage root>/tune`` (``--resume`` finds it by this name);
    default ``dqn-<sport>-<market>`` (``-sweep`` added for sweeps)."""
    register_model: bool = True
    """Register the exported policy as the challenger of ``betml-dqn-<sport>-<market>``."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.data.holdout_seasons != DataConfig.model_fields["holdout_seasons"].default:
            raise ValueError(
                "set the agent's holdout with the top-level holdout_seasons, not "
                "data.holdout_seasons"
            )
        for path in self.space or {}:
            if path.split(".")[0] not in DQNSettings.model_fields:
                raise ValueError(f"space key {path!r} is not a dqn setting")
            if path in self.dqn.model_fields_set:
                raise ValueError(f"{path} is both set in dqn and searched in space")
        return self

    def dqn_with(self, sampled: dict[str, Any]) -> DQNSettings:
        """The DQN settings of one trial: the fixed ones with the sampled ones set."""
        merged = apply_overrides(self.dqn.model_dump(), sampled)
        return DQNSettings.model_validate(merged)

    def resolved_run_name(self, *, sweep: bool) -> str:
        if self.run_name:
            return self.run_name
        name = f"{FAMILY}-{self.data.sport}-{market_slug(self.data.market)}"
        return f"{name}-sweep" if sweep else name
