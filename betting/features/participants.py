"""The participant-history table: one row per (event, participant), built from a selection frame.

Two-participant events (``home`` and ``away`` set: football, moneyline sports) give a home and
an away row; their points (win 1, draw 0.5, loss 0) come from the score when both scores exist,
otherwise from the settled 1X2 or moneyline market (a draw selection is one without participant).
Other events (races) give one row per runner of their winner market; points are the runner's
``won`` (1/0), since betml keeps no finishing positions. Points are NaN while unsettled.

Strings are encoded once (:func:`encode`); everything after works on integer codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from betting.features.columns import WINNER_MARKETS

HOME, AWAY, RUNNER = 0, 1, 2
_MATCH_MARKETS = ("1x2", "moneyline")


@dataclass(frozen=True)
class Encoded:
    """A selection frame reduced to integer codes.

    Attributes:
        rows: per selection row (positional): ``ev`` (its event's position in ``events``),
            ``participant`` (code in ``names``, -1 for none), ``market`` (a dense id of the
            row's (event, market)), ``won``, ``match_market`` and ``winner_market`` (booleans).
        events: one row per event ordered by (starts_at, event_key): ``event_key``, ``t``
            (int64 ns), ``home``/``away`` (codes, -1 for none), ``home_score``, ``away_score``.
        names: the participant names; ``rank`` orders them alphabetically.
    """

    rows: pd.DataFrame
    events: pd.DataFrame
    names: np.ndarray
    rank: np.ndarray


def _first_rows(codes: np.ndarray, n_codes: int) -> np.ndarray:
    first = np.empty(n_codes, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    return first


def encode(frame: pd.DataFrame) -> Encoded:
    """Encode events and participants of ``frame`` (see :class:`Encoded`)."""
    event_code, event_keys = pd.factorize(frame["event_key"])
    heads = frame.iloc[_first_rows(event_code, len(event_keys))]
    t = pd.to_datetime(heads["starts_at"], utc=True).dt.as_unit("ns").astype("int64").to_numpy()
    key_rank = np.empty(len(event_keys), dtype=np.int64)
    key_rank[pd.Index(event_keys).argsort()] = np.arange(len(event_keys))
    order = np.lexsort((key_rank, t))
    ev_of_code = np.empty(len(order), dtype=np.int64)
    ev_of_code[order] = np.arange(len(order))
    heads = heads.iloc[order]

    part_code, part_names = pd.factorize(frame["participant"])
    pieces = [np.asarray(part_names, dtype=object)]
    pieces += [heads[side].to_numpy(object) for side in ("home", "away")]
    codes, names = pd.factorize(np.concatenate(pieces))
    n_named, n_events = len(part_names), len(heads)
    ev = ev_of_code[event_code]
    market_key, _ = pd.factorize(frame["market_key"])
    market, _ = pd.factorize(ev * (int(market_key.max(initial=0)) + 1) + market_key)
    rows = pd.DataFrame(
        {
            "ev": ev,
            "market": market,
            "participant": np.where(part_code >= 0, codes[:n_named][part_code], -1),
            "won": pd.to_numeric(frame["won"], errors="coerce").to_numpy(float),
            "match_market": frame["market_type"].isin(_MATCH_MARKETS).to_numpy(bool),
            "winner_market": frame["market_type"].isin(WINNER_MARKETS).to_numpy(bool),
        }
    )
    events = pd.DataFrame(
        {
            "event_key": np.asarray(event_keys, dtype=object)[order],
            "t": t[order],
            "home": codes[n_named : n_named + n_events],
            "away": codes[n_named + n_events :],
            "home_score": pd.to_numeric(heads["home_score"], errors="coerce").to_numpy(float),
            "away_score": pd.to_numeric(heads["away_score"], errors="coerce").to_numpy(float),
        }
    )
    names = np.asarray(names, dtype=object)
    rank = np.empty(len(names), dtype=np.int64)
    rank[np.argsort(names.astype(str), kind="stable")] = np.arange(len(names))
    return Encoded(rows, events, names, rank)


def _home_points(coded: Encoded) -> np.ndarray:
    """Home points of each event: from the score, else from its settled match market."""
    events = coded.events
    diff = events["home_score"].to_numpy() - events["away_score"].to_numpy()
    points = np.where(diff > 0, 1.0, np.where(diff < 0, 0.0, 0.5))
    points[np.isnan(diff)] = np.nan
    rows = coded.rows
    winners = rows[rows["match_market"].to_numpy() & (rows["won"].to_numpy() == 1.0)]
    winners = winners.drop_duplicates("ev")
    ev = winners["ev"].to_numpy()
    who = winners["participant"].to_numpy()
    from_result = np.where(
        who < 0,
        0.5,
        np.where(
            who == events["home"].to_numpy()[ev],
            1.0,
            np.where(who == events["away"].to_numpy()[ev], 0.0, np.nan),
        ),
    )
    fill = np.isnan(points[ev])
    points[ev[fill]] = from_result[fill]
    return points


def _paired_rows(coded: Encoded, paired: np.ndarray) -> pd.DataFrame:
    events = coded.events
    home_points = _home_points(coded)
    ev = np.flatnonzero(paired)
    home, away = events["home"].to_numpy()[ev], events["away"].to_numpy()[ev]
    hs, as_ = events["home_score"].to_numpy()[ev], events["away_score"].to_numpy()[ev]
    return pd.DataFrame(
        {
            "ev": np.r_[ev, ev],
            "code": np.r_[home, away],
            "opponent": np.r_[away, home],
            "role": np.r_[np.full(len(ev), HOME), np.full(len(ev), AWAY)],
            "scored": np.r_[hs, as_],
            "conceded": np.r_[as_, hs],
            "points": np.r_[home_points[ev], 1.0 - home_points[ev]],
        }
    )


def _runner_rows(coded: Encoded, paired: np.ndarray) -> pd.DataFrame:
    rows = coded.rows
    ev = rows["ev"].to_numpy()
    keep = ~paired[ev] & (rows["participant"].to_numpy() >= 0) & rows["winner_market"].to_numpy()
    runners = rows[keep].groupby(["ev", "participant"], sort=False)["won"].max().reset_index()
    return pd.DataFrame(
        {
            "ev": runners["ev"].to_numpy(),
            "code": runners["participant"].to_numpy(),
            "opponent": -1,
            "role": RUNNER,
            "scored": np.nan,
            "conceded": np.nan,
            "points": runners["won"].to_numpy(float),
        }
    )


def participant_table(coded: Encoded) -> pd.DataFrame:
    """One row per (event, participant), ordered by (event, role, name).

    Returns:
        Columns ev, code (participant), opponent (its code in two-participant events, -1
        otherwise), role (HOME/AWAY/RUNNER), t (int64 ns), n_participants, scored and
        conceded (goals of this event) and points.
    """
    events = coded.events
    paired = (events["home"].to_numpy() >= 0) & (events["away"].to_numpy() >= 0)
    table = pd.concat([_paired_rows(coded, paired), _runner_rows(coded, paired)])
    table = table.iloc[
        np.lexsort(
            (coded.rank[table["code"].to_numpy()], table["role"].to_numpy(), table["ev"].to_numpy())
        )
    ]
    table = table.drop_duplicates(["ev", "code"]).reset_index(drop=True)
    ev = table["ev"].to_numpy()
    table["t"] = events["t"].to_numpy()[ev]
    table["n_participants"] = np.bincount(ev, minlength=len(events))[ev]
    two = (table["n_participants"].to_numpy() == 2) & (table["opponent"].to_numpy() < 0)
    if two.any():  # two-runner events without home/away: the opponent is the other row
        code = table["code"].to_numpy()
        first = np.r_[True, ev[1:] != ev[:-1]]
        other = np.where(first, np.r_[code[1:], -1], np.r_[-1, code[:-1]])
        table.loc[two, "opponent"] = other[two]
    return table
