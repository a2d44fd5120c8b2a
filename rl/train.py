"""Training the DQN staking agent on Ray Tune: one run or a sweep, checkpoints, resume, export.

The decision table (:func:`rl.decisions.cached_decision_table`, kept under
``<storage root>/decisions``) is split by season: the agent trains on the earlier seasons and is
judged on the latest ``holdout_seasons``, which it never plays while learning. Each Tune trial
(:func:`dqn_trial`) builds an RLlib DQN (new API stack, torch; double Q, dueling heads,
prioritized episode replay, n-step targets) on :class:`~rl.env.BettingEnv` and loops
``algo.train()``, reporting the ``train/...`` metrics of :mod:`rl.config` every iteration. After
the first iteration, every ``checkpoint_every`` iterations and after the last, it plays every
holdout season greedily (``eval/...``, beside flat value betting on the same markets), saves the
algorithm and the exported policy (:mod:`rl.export`) as a Tune checkpoint; a retried or resumed
trial restores the latest one and goes on counting. The policy of the best trial's last
checkpoint gets its own MLflow run and is registered as ``betml-dqn-<sport>-<market>``.

Registry score: :func:`cluster.tracking.promote` compares lower-is-better holdout scores. The
agent's is ``neg_log_growth``, minus its mean log growth of the bankroll per holdout season
(``-eval/log_growth``), registered as a named score (not as a log loss), so the champion moves
to a challenger that grew the bankroll more on the same holdout.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ray import tune
from ray.tune import Callback, Checkpoint, ResultGrid

from betting.bankroll import settle_bet
from betting.errors import BetmlError, InvalidInput
from betting.evaluation import max_drawdown, value_bets
from cluster.ray_runtime import NO_RLLIB_TF_ENV_VARS
from cluster.settings import get_settings
from cluster.training import DataConfig, holdout_id, load_table, market_slug
from cluster.tuning import SweepSettings, run_sweep
from rl import config as names
from rl.config import AgentConfig, DQNSettings
from rl.decisions import cached_decision_table
from rl.env import BettingEnv, EnvConfig, greedy_rollout

logger = logging.getLogger(__name__)

#: Files of a trial checkpoint beside RLlib's own: the exported policy and the trial's counters.
POLICY_DIR = "policy"
PROGRESS_FILE = "betml_progress.json"


class TrainingInterrupted(BetmlError):
    """A run stopped before its trials finished (Ctrl+C, a lost driver); ``--resume`` goes on."""


def keep_tensorflow_out() -> None:
    """Set ``RLLIB_TEST_NO_TF_IMPORT`` before RLlib is imported in this process (see
    :data:`cluster.ray_runtime.NO_RLLIB_TF_ENV_VARS`); workers get it from the runtime env."""
    for key, value in NO_RLLIB_TF_ENV_VARS.items():
        os.environ.setdefault(key, value)
    logging.getLogger("ray.rllib.utils.framework").setLevel(logging.ERROR)  # a line per import


class ScaledRewardEnv(BettingEnv):
    """:class:`BettingEnv` whose rewards are multiplied by ``env_config["reward_scale"]`` for
    learning (log growth per bet is about 1e-3: Adam's steps would swamp Q-values that small)."""

    def __init__(self, env_config: dict[str, Any] | None = None) -> None:
        env_config = dict(env_config or {})
        self.reward_scale = float(env_config.pop("reward_scale", 1.0))
        super().__init__(env_config)

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward * self.reward_scale, terminated, truncated, info


@dataclass
class DecisionData:
    """The decision table split into the seasons the agent trains on and its holdout."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    holdout_id: str


def decision_data(config: AgentConfig, table: pd.DataFrame | None = None) -> DecisionData:
    """Build (or read from the cache) the decision table of ``config`` and split off the holdout.

    Args:
        config: the agent's config.
        table: a feature table (:func:`cluster.training.load_table`); read from the store when
            unset.
    """
    table = load_table(config.data) if table is None else table
    decisions = cached_decision_table(
        table, config.model, sport=config.data.sport, market=config.data.market,
        seed=config.seed, folder=get_settings().storage_root / "decisions",
    )  # fmt: skip
    seasons = sorted(decisions["season"].astype(str).unique())
    if len(seasons) <= config.holdout_seasons:
        raise InvalidInput(
            f"the decision table has {len(seasons)} season(s) {seasons} (the first "
            f"{config.model.min_train_seasons} only train outcome models): none left to train "
            f"the agent on with holdout_seasons={config.holdout_seasons}"
        )
    is_held = decisions["season"].astype(str).isin(seasons[-config.holdout_seasons :])
    holdout = decisions[is_held].reset_index(drop=True)
    data = DataConfig.model_validate(config.data.model_dump())
    return DecisionData(decisions[~is_held].reset_index(drop=True), holdout,
                        holdout_id(data, holdout))  # fmt: skip


def algo_config(dqn: DQNSettings, env: EnvConfig, decisions: pd.DataFrame, *, seed: int) -> Any:
    """The RLlib ``DQNConfig`` of one agent, training on ``decisions`` in this process."""
    keep_tensorflow_out()
    from ray.rllib.algorithms.dqn import DQNConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    replay = {
        "type": "PrioritizedEpisodeReplayBuffer", "capacity": dqn.replay_capacity,
        "alpha": dqn.prioritized_replay_alpha, "beta": dqn.prioritized_replay_beta,
    }  # fmt: skip
    env_config = {"decisions": decisions, "env": env.model_dump(), "reward_scale": dqn.reward_scale}
    return (
        DQNConfig()
        .environment(ScaledRewardEnv, env_config=env_config)
        .env_runners(num_env_runners=0, rollout_fragment_length=dqn.rollout_fragment_length)
        .training(
            lr=dqn.lr,
            gamma=dqn.gamma,
            n_step=dqn.n_step,
            double_q=dqn.double_q,
            dueling=dqn.dueling,
            train_batch_size=dqn.train_batch_size,
            target_network_update_freq=dqn.target_network_update_freq,
            replay_buffer_config=replay,
            epsilon=[list(p) for p in dqn.epsilon],
            td_error_loss_fn=dqn.td_error_loss,
            num_steps_sampled_before_learning_starts=dqn.num_steps_sampled_before_learning_starts,
        )
        .rl_module(
            model_config=DefaultModelConfig(
                fcnet_hiddens=list(dqn.hidden_layers),
                fcnet_activation="relu",
                head_fcnet_hiddens=list(dqn.head_hidden_layers),
                head_fcnet_activation="relu",
            )
        )
        .reporting(min_sample_timesteps_per_iteration=dqn.min_env_steps_per_iteration)
        .debugging(seed=seed)
    )


# --- evaluation -----------------------------------------------------------------------------


def flat_log_growth(env: BettingEnv, season: str, *, stake: float, min_edge: float) -> float:
    """Log growth of flat value betting over a season of ``env``: ``stake`` of the bankroll on
    each chosen selection whose model edge reaches ``min_edge``, settled by
    :func:`betting.bankroll.settle_bet` in the environment's order."""
    rows = np.flatnonzero(env.markets.season == season)
    p = env.markets.rows["p_model"].to_numpy(dtype=float)[rows]
    odds, won = env.markets.odds[rows], env.markets.won[rows]
    bets = value_bets(p, odds, min_edge=min_edge)
    bankroll = 1.0
    for o, w, bet in zip(odds, won, bets, strict=True):
        if bet:
            bankroll = settle_bet(bankroll, stake, float(o), bool(w))
    return math.log(bankroll) if bankroll > 0 else -math.inf


def evaluate(
    act: Callable[[np.ndarray], int], env: BettingEnv, *, flat_stake: float, min_edge: float
) -> dict[str, float]:
    """Play every season of ``env`` with the greedy ``act``; the ``eval/...`` metrics."""
    growth, flat, profit, turnover, bets, drawdown = [], [], 0.0, 0.0, 0, 0.0
    for season in env.seasons:
        played = greedy_rollout(env, act, season=season)
        after = played["bankroll"].to_numpy()
        before = np.concatenate(([1.0], after[:-1]))
        growth.append(math.log(after[-1]) if after[-1] > 0 else -math.inf)
        flat.append(flat_log_growth(env, season, stake=flat_stake, min_edge=min_edge))
        profit += float((after - before).sum())
        turnover += float((played["stake"].to_numpy() * before).sum())
        bets += int((played["stake"] > 0).sum())
        drawdown = max(drawdown, max_drawdown(np.concatenate(([1.0], after))))
    return {
        names.EVAL_LOG_GROWTH: float(np.mean(growth)),
        names.EVAL_ROI: profit / turnover if turnover > 0 else math.nan,
        names.EVAL_BETS: float(bets),
        names.EVAL_MAX_DRAWDOWN: drawdown,
        names.EVAL_FLAT_LOG_GROWTH: float(np.mean(flat)),
    }


# --- the trial ------------------------------------------------------------------------------


@dataclass
class TrialProgress:
    """What a trial has done so far; kept in each checkpoint so a resumed trial counts on."""

    iteration: int = 0
    env_steps: int = 0
    episodes: int = 0
    evaluation: dict[str, float] = field(default_factory=dict)


def _should_evaluate(iteration: int, config: AgentConfig) -> bool:
    return iteration in (1, config.iterations) or iteration % config.checkpoint_every == 0


def dqn_trial(
    sampled: dict[str, Any], *, train: pd.DataFrame, holdout: pd.DataFrame, config_json: str
) -> None:
    """One Tune trial: train a DQN for ``iterations``, evaluating and checkpointing on the way.

    ``sampled`` holds the trial's values of the searched ``dqn`` settings (empty for a single
    run). A retried or resumed trial restores its latest checkpoint and goes on from there.
    """
    import torch

    from rl.export import export_policy, q_network_of
    from rl.policy import ExportedPolicy

    config = AgentConfig.model_validate_json(config_json)
    dqn = config.dqn_with({k: v for k, v in sampled.items() if k in (config.space or {})})
    torch.set_num_threads(max(1, int(config.cpus_per_trial)))
    algo = algo_config(dqn, config.env, train, seed=config.seed).build_algo()
    progress = TrialProgress()
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            algo.restore_from_path(folder)
            progress = TrialProgress(**json.loads((Path(folder) / PROGRESS_FILE).read_text()))
        logger.info("trial resumed after iteration %d", progress.iteration)
    holdout_env = BettingEnv(
        {"decisions": holdout, "env": config.env.model_copy(update={"episode": "season"})}
    )
    export_config = {**config.model_dump(mode="json"), "dqn": dqn.model_dump(mode="json")}
    while progress.iteration < config.iterations:
        started = time.perf_counter()
        result = algo.train()
        runners = result.get("env_runners", {})
        steps = int(runners.get("num_env_steps_sampled_lifetime", progress.env_steps))
        seconds = time.perf_counter() - started
        progress.iteration += 1
        progress.episodes += int(runners.get("num_episodes", 0))
        metrics: dict[str, float] = {
            names.TRAIN_ITERATION: progress.iteration,
            names.TRAIN_ENV_STEPS: steps,
            names.TRAIN_EPISODES: progress.episodes,
            names.TRAIN_ENV_STEPS_PER_S: (steps - progress.env_steps) / seconds,
        }
        progress.env_steps = steps
        episode_return = runners.get("episode_return_mean")
        if episode_return is not None and math.isfinite(episode_return):
            metrics[names.TRAIN_EPISODE_RETURN] = episode_return / dqn.reward_scale
        if not _should_evaluate(progress.iteration, config):
            tune.report({**metrics, **progress.evaluation})
            continue
        module = algo.get_module()
        policy = ExportedPolicy(q_network_of(module), config.env)
        evaluation = evaluate(
            policy.act_one, holdout_env, flat_stake=config.evaluation.flat_stake,
            min_edge=config.data.min_edge,
        )  # fmt: skip
        progress.evaluation = {**evaluation, names.EVAL_ITERATION: progress.iteration}
        with tempfile.TemporaryDirectory() as folder:
            algo.save_to_path(folder)
            export_policy(
                module, Path(folder) / POLICY_DIR, env_config=config.env,
                sport=config.data.sport, market=config.data.market, config=export_config,
                metrics=progress.evaluation,
            )  # fmt: skip
            (Path(folder) / PROGRESS_FILE).write_text(json.dumps(progress.__dict__))
            tune.report({**metrics, **progress.evaluation},
                        checkpoint=Checkpoint.from_directory(folder))  # fmt: skip
    algo.stop()


# --- the run --------------------------------------------------------------------------------


@dataclass
class AgentOutcome:
    """What a training run or sweep produced."""

    run_name: str
    trials: list[dict[str, Any]]
    best_params: dict[str, Any]
    evaluation: dict[str, float]
    checkpoint: Checkpoint
    seconds: float
    env_steps: int
    run_id: str | None = None
    model_name: str | None = None
    version: int | None = None
    artifact: Path | None = None
    summary: dict[str, Any] = field(default_factory=dict)


class _CompletionWatch(Callback):
    """Which trials started in this session and did not end (Tune marks the trials it stops on
    Ctrl+C as terminated, but tells its callbacks of no completion).

    A resumed run keeps the callbacks it started with, unpickled from its state: the copy
    made then is the one Tune calls, so each instance, new or unpickled, is :attr:`current`.
    """

    current: _CompletionWatch | None = None

    def __init__(self) -> None:
        self.started: set[str] = set()
        self.ended: set[str] = set()
        _CompletionWatch.current = self

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]  # a new session: only its own trials count

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.started.add(trial.trial_id)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.ended.add(trial.trial_id)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.ended.add(trial.trial_id)

    def unfinished(self) -> set[str]:
        return self.started - self.ended


def trial_rows(results: ResultGrid, config: AgentConfig) -> list[dict[str, Any]]:
    """One row per trial: its sampled values, last metrics and error."""
    rows = []
    for r in results:
        metrics = r.metrics or {}
        rows.append({
            "trial_id": metrics.get("trial_id"),
            **{k: r.config.get(k) for k in config.space or {}},
            **{k: metrics.get(k) for k in (names.TRAIN_ITERATION, names.TRAIN_ENV_STEPS,
                                           names.EVAL_LOG_GROWTH, names.EVAL_ROI)},
            "error": str(r.error)[:200] if r.error else None,
            "_result": r,
        })  # fmt: skip
    return rows


def best_trial(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The trial with the highest holdout log growth among those with a checkpoint."""
    scored = [
        row for row in rows
        if row["_result"].checkpoint is not None
        and isinstance(row[names.EVAL_LOG_GROWTH], int | float)
        and not math.isnan(row[names.EVAL_LOG_GROWTH])
    ]  # fmt: skip
    if not scored:
        errors = "; ".join(sorted({row["error"] for row in rows if row["error"]}))[:500]
        raise InvalidInput(f"no trial reached an evaluation: {errors or 'no results'}")
    return max(scored, key=lambda row: row[names.EVAL_LOG_GROWTH])


def run(
    config: AgentConfig,
    *,
    sweep: bool = False,
    trials: int | None = None,
    resume: bool = False,
    callbacks: Iterable[Callback] = (),
    verbose: int | None = None,
    table: pd.DataFrame | None = None,
    storage_path: Path | None = None,
) -> AgentOutcome:
    """Train the agent (one trial, or a sweep of ``config.space``), then log and register the
    best trial's policy. Ray must be connected (``cluster.ray_runtime.connect``)."""
    from rl.registry import log_agent

    if sweep and not config.space:
        raise InvalidInput("a DQN sweep needs a `space` of dqn settings to search")
    started = time.perf_counter()
    data = decision_data(config, table)
    name = config.resolved_run_name(sweep=sweep)
    settings = SweepSettings(
        name=name, metric=names.SWEEP_METRIC, mode="max",
        num_samples=(trials or config.trials) if sweep else 1,
        cpus_per_trial=config.cpus_per_trial, max_concurrent=config.max_concurrent,
        grace_period=min(config.checkpoint_every, config.iterations), max_t=config.iterations,
        seed=config.seed, max_failures=config.max_failures,
    )  # fmt: skip
    config_json = config.model_dump_json(exclude_unset=True)  # re-validates as it was given
    trainable = tune.with_parameters(
        dqn_trial, train=data.train, holdout=data.holdout, config_json=config_json
    )
    space = {k: d.to_tune() for k, d in (config.space or {}).items()} if sweep else {}
    tags = {"betml.family": names.FAMILY, "betml.sport": config.data.sport,
            "betml.market": market_slug(config.data.market)}  # fmt: skip
    watch = _CompletionWatch()
    results = run_sweep(
        trainable, space, settings, resume=resume, callbacks=[watch, *callbacks], tags=tags,
        verbose=verbose, storage_path=storage_path, search=sweep,
    )  # fmt: skip
    watch = _CompletionWatch.current or watch
    if watch.unfinished() or any(not r.metrics and r.error is None for r in results):
        raise TrainingInterrupted(
            f"{name} stopped before its trials finished; nothing was registered. Continue it "
            f"from its checkpoints with --resume (run_name {name!r})"
        )
    rows = trial_rows(results, config)
    best = best_trial(rows)
    result = best.pop("_result")
    outcome = AgentOutcome(
        run_name=name, trials=[{k: v for k, v in r.items() if k != "_result"} for r in rows],
        best_params={k: best[k] for k in config.space or {}} if sweep else {},
        evaluation={}, checkpoint=result.checkpoint, seconds=time.perf_counter() - started,
        env_steps=int(best[names.TRAIN_ENV_STEPS] or 0),
    )  # fmt: skip
    log_agent(outcome, config, data)
    return outcome


def copy_policy(checkpoint: Checkpoint, folder: Path) -> Path:
    """Copy the exported policy of a trial checkpoint to ``folder``."""
    with checkpoint.as_directory() as source:
        if folder.exists():
            shutil.rmtree(folder)
        shutil.copytree(Path(source) / POLICY_DIR, folder)
    return folder
