"""Names, version and constants of betml's selection features.

``FEATURE_COLUMNS`` is the exact, ordered list of model inputs; training, batch scoring and online
serving all select it. ``FEATURE_SCHEMA_VERSION`` is stored with every model artifact and serving
refuses an artifact whose version differs from the code's.

Bump rule: increase ``FEATURE_SCHEMA_VERSION`` (an integer in a string) whenever a trained model
would see different inputs for the same selection frame: a column added, removed, renamed or
reordered, or a change of meaning or value (a constant such as ``ELO_K``, a window, a cap, a
neutral mapping, a fallback). Refactors that leave every value bit-for-bit unchanged keep it.
"""

from __future__ import annotations

FEATURE_SCHEMA_VERSION = "1"

#: Rating every participant starts from.
ELO_INITIAL = 1500.0
#: Elo K-factor: the largest rating change one event can bring.
ELO_K = 20.0
#: Rating points added to the home participant's rating when computing expectations.
ELO_HOME_ADVANTAGE = 60.0
#: Rest days are capped here; a participant without a previous event gets the cap.
REST_DAYS_CAP = 30.0
#: Windows (in previous events) of the short and long form.
FORM_SHORT = 5
FORM_LONG = 10

#: Market types whose result says who won the event (used when scores are missing, and for races).
WINNER_MARKETS = ("1x2", "moneyline", "win")

#: Per (event, participant) statistics over the participant's earlier events.
PARTICIPANT_STATS = [
    "elo", "win_pct", "ppg", "form5", "form10", "streak", "rest_days", "experience",
    "goals_for", "goals_against",
]  # fmt: skip
#: Statistics also given as "own minus opponents" (``<stat>_diff``).
DIFF_STATS = ["elo", "ppg", "form5", "form10"]
INDICATOR_COLUMNS = ["is_home", "is_draw", "is_away", "is_over", "is_under", "is_runner"]
ODDS_FEATURES = [
    "open_implied", "close_implied", "implied_move", "log_odds_move", "close_implied_std",
    "open_overround", "close_overround",
]  # fmt: skip

FEATURE_COLUMNS: list[str] = [
    *PARTICIPANT_STATS,
    *(f"opp_{s}" for s in PARTICIPANT_STATS),
    *(f"{s}_diff" for s in DIFF_STATS),
    "elo_expected",
    "h2h_share",
    "h2h_meetings",
    *INDICATOR_COLUMNS,
    "field_size",
    "market_line",
    *ODDS_FEATURES,
]

#: Identifying and target columns written beside the features by :func:`feature_frame`.
KEY_COLUMNS = [
    "event_key", "market_key", "selection", "starts_at", "season", "won", "true_probability",
]  # fmt: skip

#: Columns of the selection frame the features read (odds aggregates are optional).
REQUIRED_COLUMNS = [
    "event_key", "starts_at", "home", "away", "home_score", "away_score", "market_key",
    "market_type", "selection", "participant", "won",
]  # fmt: skip
