"""What the strategy agent is asked: a market's decision-table rows and the bankroll state.

The agent (:mod:`serve.agent`) acts on the rows of :mod:`rl.decisions`'s decision table, the
table ``betml backtest --strategy dqn`` plays it on. Online, a market's rows are built here from
what the prediction knows of it:

* ``p_model``: the served outcome model's probabilities (what GetPrediction answers);
* ``odds``: the price each selection is bet at, the best latest price among the caller's
  bookmakers (GetPrediction's ``odds``; for a stored settled market, its best closing price, the
  backtest's ``odds``);
* ``closing_odds``: the reference price as the decision table takes it, the reference
  bookmaker's closing price else the mean closing price; a market not closed yet (a live raw
  event) has none, and its bet prices stand in;
* ``p_market``: the margin-free probabilities of ``closing_odds`` (proportional, as the table);
* the event's features (``FEATURE_COLUMNS``), ``starts_at`` and ``season``; ``won`` and
  ``true_probability`` are unknown (NaN): the agent never sees them before it decides.

The bankroll state of an online request (:class:`BankrollState`) is the last part of the
agent's observation. A request carries a bankroll amount, not a history, so by default it
implies the **neutral state**: the start of a season with a whole bankroll (the request's
bankroll is the agent's reference, 1.0 in its units), no drawdown, no recent bets, progress 0.
That is the state :meth:`rl.policy.ExportedPolicy.decide` meets on the first market of each
season, so an online stake equals the backtest's stake on a season's first market. The agent's
fraction is always of the request's bankroll. This module is pure (no torch, no Serve): the
ingress builds the rows, the agent deployment acts on them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from betting.errors import InvalidInput
from betting.evaluation import market_ids_of, market_probabilities_from_odds
from betting.features import FEATURE_COLUMNS
from rl.decisions import DECISION_COLUMNS


@dataclass(frozen=True)
class BankrollState:
    """The bankroll part of the agent's observation (``rl.env.BANKROLL_OBSERVATION``)."""

    log_bankroll: float = 0.0
    """Log of the bankroll relative to the reference (the season's start): 0 when whole."""
    drawdown: float = 0.0
    """Fall from the peak bankroll, a fraction of the peak in [0, 1)."""
    recent_return: float = 0.0
    """Mean return on bankroll of the last bets (0.01 = +1% per bet); 0 without bets."""
    progress: float = 0.0
    """Share of the season's markets already played, in [0, 1]."""

    def __post_init__(self) -> None:
        values = (self.log_bankroll, self.drawdown, self.recent_return, self.progress)
        if not all(math.isfinite(v) for v in values):
            raise InvalidInput(f"bankroll state values must be finite, got {self}")
        if not 0.0 <= self.drawdown < 1.0:
            raise InvalidInput(f"drawdown must be in [0, 1), got {self.drawdown!r}")
        if not 0.0 <= self.progress <= 1.0:
            raise InvalidInput(f"progress must be in [0, 1], got {self.progress!r}")


#: What an online request implies: a season's start with a whole bankroll (module docstring).
NEUTRAL_STATE = BankrollState()


@dataclass(frozen=True)
class AgentQuery:
    """One request to the agent deployment: markets' decision rows and one bankroll state."""

    decisions: pd.DataFrame
    """Decision rows (:func:`decision_rows`) of one or more markets, whole markets."""
    state: BankrollState = NEUTRAL_STATE


def decision_rows(
    rows: pd.DataFrame,
    probabilities: Sequence[float] | np.ndarray,
    odds: Sequence[float] | np.ndarray,
) -> pd.DataFrame:
    """The decision-table rows of one market as serving knows it (see the module docstring).

    Args:
        rows: the market's selection rows with their features (``EventRows.market``).
        probabilities: the outcome model's probability of each row.
        odds: the price each row is bet at, finite and above 1.

    Raises:
        InvalidInput: lengths differ or a price is not above 1.
    """
    p = np.asarray(probabilities, dtype=float)
    price = np.asarray(odds, dtype=float)
    if not len(rows) == len(p) == len(price):
        raise InvalidInput(
            f"{len(rows)} rows, {len(p)} probabilities and {len(price)} prices differ in number"
        )
    if not (np.isfinite(price) & (price > 1.0)).all():
        raise InvalidInput(f"prices must be finite and above 1, got {price.tolist()}")
    frame = rows.reset_index(drop=True)
    closing = _column(frame, "close_ref").fillna(_column(frame, "close_mean"))
    if closing.isna().any() or (closing <= 1.0).any():  # not closed yet: bet prices stand in
        closing = pd.Series(price)
    out = frame[["event_key", "market_key", "selection", "starts_at", "season"]].copy()
    out["season"] = out["season"].astype(str)
    out["p_model"] = p
    out["p_market"] = market_probabilities_from_odds(closing.to_numpy(), market_ids_of(out))
    out["odds"] = price
    out["closing_odds"] = closing.to_numpy()
    out["won"] = np.nan
    out["true_probability"] = np.nan
    features = frame.reindex(columns=FEATURE_COLUMNS)
    return pd.concat([out[DECISION_COLUMNS], features], axis=1)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[name], errors="coerce")
