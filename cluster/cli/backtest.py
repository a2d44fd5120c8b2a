"""``betml backtest``: staking strategies side by side on the held-out seasons."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from betting.errors import BetmlError, InvalidInput
from cluster.cli.models import console, report_table
from cluster.configs import load_config
from cluster.settings import get_settings
from cluster.training import load_table
from rl.backtest import BacktestConfig, holdout_period, run_backtest, save_backtest
from rl.decisions import cached_decision_table
from rl.strategies import DQN, STRATEGIES, PolicyStake, Strategy, build_strategies


def backtest(
    config: Path = typer.Option(Path("configs/rl/backtest.yaml"), help="Backtest config YAML."),
    strategy: list[str] | None = typer.Option(
        None,
        "--strategy",
        "-s",
        metavar="NAME",
        help=f"Strategy to run, repeatable: {', '.join([*STRATEGIES, DQN])}. "
        "Default: every baseline (and dqn with --policy).",
    ),
    policy: Path | None = typer.Option(
        None,
        metavar="FOLDER",
        help="Folder of a trained DQN policy (rl.policy.load_policy); adds dqn.",
    ),
    output: Path | None = typer.Option(
        None,
        help="Folder for backtest.json and equity.png. Default: <storage root>/backtests/<time>.",
    ),
) -> None:
    """Backtest staking strategies on the same held-out markets: bets, turnover, ROI, log
    growth, drawdown, Sharpe, closing-line value and final bankroll, saved as JSON and a plot."""
    cfg = load_config(config, BacktestConfig)
    names = _strategy_names(strategy, policy)
    table = load_table(cfg.data)
    baselines = build_strategies([n for n in names if n != DQN], cfg.strategy_params())
    agent = [_dqn(policy)] if policy is not None else []
    for baseline in baselines:  # refuse oracle-kelly on real data before fitting any model
        if baseline.probability_column in table.columns:
            baseline.check(table)
    storage = get_settings().storage_root
    with console.status(
        f"decision table of {cfg.data.sport} {cfg.data.market}: fitting "
        f"{cfg.model.family} per season..."
    ):
        decisions = cached_decision_table(
            table, cfg.model, sport=cfg.data.sport, market=cfg.data.market,
            seed=cfg.seed, folder=storage / "decisions",
        )  # fmt: skip
    chosen: list[Strategy] = sorted([*baselines, *agent], key=lambda s: names.index(s.name))
    seasons = holdout_period(decisions, cfg.holdout_seasons)
    result = run_backtest(decisions, chosen, seasons=seasons, bankroll=cfg.bankroll)
    title = f"backtest on {', '.join(seasons)}: {result.markets} markets, bankroll {cfg.bankroll:g}"
    console.print(report_table(result.metrics, title))
    folder = output or storage / "backtests" / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    written = save_backtest(result, folder, config=cfg.model_dump(mode="json"))
    console.print(f"saved {written['json']} and {written['png']}")


def _strategy_names(asked: list[str] | None, policy: Path | None) -> list[str]:
    known = [*STRATEGIES, DQN]
    names = list(dict.fromkeys(asked or [*STRATEGIES]))  # in order, once each
    unknown = [n for n in names if n not in known]
    if unknown:
        raise typer.BadParameter(f"unknown strategy {unknown[0]!r}; choose from {known}")
    if policy is not None and DQN not in names:
        names.append(DQN)
    if DQN in names and policy is None:
        raise typer.BadParameter(
            "no DQN policy: train one with `betml train dqn` and pass its folder with --policy"
        )
    return names


def _dqn(path: Path) -> PolicyStake:
    try:
        from rl.policy import load_policy
    except ImportError as e:
        raise InvalidInput(f"cannot load DQN policies here: {e}") from e
    try:
        return PolicyStake(name=DQN, policy=load_policy(path), source=str(path))
    except BetmlError:
        raise
    except (OSError, ValueError) as e:
        raise InvalidInput(f"cannot load the DQN policy in {path}: {e}") from e
