"""SubmitBacktestFeedback's conversion: a proto BacktestExport into the MLExport of the JSON."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest

from betting.ingest.backtest_export import EXAMPLE_PATH, MLExport, load_backtest_export
from serve.errors import BadRequest
from serve.feedback import export_from_proto, export_to_proto, run_key
from serve.proto.betml.v1 import ml_service_pb2 as pb


@pytest.fixture
def example() -> MLExport:
    return load_backtest_export(EXAMPLE_PATH)


def violations(message: pb.BacktestExport) -> dict[str, str]:
    with pytest.raises(BadRequest) as caught:
        export_from_proto(message)
    return {v.field: v.description for v in caught.value.violations}


def test_the_example_round_trips_through_the_proto(example: MLExport) -> None:
    message = export_to_proto(example)
    assert message.bets[0].outcome == pb.BET_OUTCOME_LOST
    assert message.risk_profile.risk_level != pb.RISK_LEVEL_UNSPECIFIED
    back = export_from_proto(message)
    assert back == example
    # and equal to the JSON document itself, field for field
    document = json.loads(EXAMPLE_PATH.read_text())
    assert back.model_dump(mode="json", exclude_none=True) == MLExport.model_validate(
        document
    ).model_dump(mode="json", exclude_none=True)


def test_enums_timestamps_and_struct_are_converted(example: MLExport) -> None:
    message = export_to_proto(example)
    message.bets[1].outcome = pb.BET_OUTCOME_VOID
    message.risk_profile.risk_level = pb.RISK_LEVEL_VERY_HIGH
    message.exported_at.FromDatetime(datetime(2024, 7, 1, 8, 30, tzinfo=UTC))
    message.strategy.parameters.update({"nested": {"a": [1, "b"]}, "flag": True})
    export = export_from_proto(message)
    assert export.bets[1].outcome == "void" and export.risk_profile.risk_level == "very_high"
    assert export.exported_at == datetime(2024, 7, 1, 8, 30, tzinfo=UTC)
    assert export.exported_at.tzinfo is not None
    assert export.strategy.parameters["nested"] == {"a": [1.0, "b"]}
    assert export.strategy.parameters["flag"] is True
    assert export.strategy.parameters["max_odds"] == 8.0


def test_optional_fields_left_unset_take_their_defaults(example: MLExport) -> None:
    message = export_to_proto(example)
    message.metrics.historical.ClearField("profit_factor")
    message.metrics.ClearField("monte_carlo")
    message.metrics.ClearField("walk_forward")
    message.strategy.ClearField("parameters")
    del message.bets[:]
    del message.equity_curve[:]
    export = export_from_proto(message)
    assert export.metrics.historical.profit_factor is None
    assert export.metrics.monte_carlo is None and export.metrics.walk_forward is None
    assert export.strategy.parameters == {} and export.bets == [] and export.equity_curve == []


def test_each_bad_field_is_named_by_its_path(example: MLExport) -> None:
    message = export_to_proto(example)
    message.bets[3].odds = 0.5
    message.bets[4].outcome = pb.BET_OUTCOME_UNSPECIFIED
    message.bets[5].confidence = math.nan
    message.bets[6].event_ref = ""
    message.summary.ClearField("period_start")
    message.strategy.id = ""
    message.metrics.monte_carlo.final_equity_percentiles["x9"] = 1.0
    message.metrics.walk_forward.windows[0].train_start.FromDatetime(datetime(2030, 1, 1))
    message.risk_profile.risk_level = 9  # not a RiskLevel
    message.equity_curve[2].timestamp.seconds = 10**13  # beyond year 9999
    message.schema_version = "2.0"
    found = violations(message)
    assert set(found) == {
        "export.bets[3].odds",
        "export.bets[4].outcome",
        "export.bets[5].confidence",
        "export.bets[6].event_ref",
        "export.summary.period_start",
        "export.strategy.id",
        "export.metrics.monte_carlo.final_equity_percentiles.x9",
        "export.metrics.walk_forward.windows[0]",
        "export.risk_profile.risk_level",
        "export.equity_curve[2].timestamp",
        "export.schema_version",
    }
    assert "0.5" in found["export.bets[3].odds"]
    assert "BET_OUTCOME_UNSPECIFIED" in found["export.bets[4].outcome"]
    assert found["export.summary.period_start"] == "is required"
    assert "got 9" in found["export.risk_profile.risk_level"]
    assert "'2.0'" in found["export.schema_version"]


def test_missing_parts_and_rules_across_fields(example: MLExport) -> None:
    found = violations(pb.BacktestExport())
    for part in ("strategy", "summary", "metrics", "risk_profile", "exported_at"):
        assert found[f"export.{part}"] == "is required"
    message = export_to_proto(example)
    message.summary.period_end.FromDatetime(datetime(2020, 1, 1, tzinfo=UTC))
    message.equity_curve[5].timestamp.FromDatetime(datetime(2000, 1, 1, tzinfo=UTC))
    found = violations(message)
    assert "is before period_start" in found["export.summary"]
    assert "equity_curve[5] is earlier" in found["export.equity_curve"]


def test_the_run_key_is_the_idempotency_key(example: MLExport) -> None:
    key = run_key(example)
    assert (key.strategy_id, key.strategy_version) == ("value-pinnacle-fair", "1.2.0")
    assert key.period_start.ToDatetime(tzinfo=UTC) == example.summary.period_start
    assert key.period_end.ToDatetime(tzinfo=UTC) == example.summary.period_end
