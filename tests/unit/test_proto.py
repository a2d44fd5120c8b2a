"""The gRPC contract: serve/proto/betml/v1/ml_service.proto and its generated Python modules.

The generated modules must match the proto (regenerated here into a temporary folder), the
service must keep its seven unary RPCs and its go_package, every element must be documented,
requests must survive serialization and pickling (Ray Serve pickles them), the backtest
messages must mirror the Go backtester's export field for field, and the generated stub must
talk to a real gRPC server.
"""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel

from betting.ingest import backtest_export as export
from serve.proto import generate
from serve.proto.betml.v1 import ml_service_pb2 as pb
from serve.proto.betml.v1 import ml_service_pb2_grpc as pb_grpc

PROTO_FILE = "betml/v1/ml_service.proto"
RPCS = [
    "GetPrediction",
    "BatchPredict",
    "EvaluateStrategy",
    "GenerateStrategy",
    "SubmitBacktestFeedback",
    "GetFeatures",
    "HealthCheck",
    "StartTraining",
    "GetTrainingJob",
    "ListTrainingJobs",
]
GO_PACKAGE = "github.com/betml/betml/gen/go/betml/v1;betmlv1"

#: Each pydantic model of the Go backtester's export and the proto message that mirrors it.
EXPORT_MIRRORS: list[tuple[type[BaseModel], Descriptor]] = [
    (export.MLExport, pb.BacktestExport.DESCRIPTOR),
    (export.StrategyMetadata, pb.Strategy.DESCRIPTOR),
    (export.BacktestSummary, pb.BacktestSummary.DESCRIPTOR),
    (export.MethodMetrics, pb.MethodMetrics.DESCRIPTOR),
    (export.MonteCarloMetrics, pb.MonteCarloMetrics.DESCRIPTOR),
    (export.WalkForwardWindow, pb.WalkForwardWindow.DESCRIPTOR),
    (export.WalkForwardMetrics, pb.WalkForwardMetrics.DESCRIPTOR),
    (export.BacktestMetrics, pb.BacktestMetrics.DESCRIPTOR),
    (export.BetRecord, pb.BacktestBet.DESCRIPTOR),
    (export.EquityRecord, pb.EquityPoint.DESCRIPTOR),
    (export.RiskProfile, pb.RiskProfile.DESCRIPTOR),
]
#: The export's lower-case strings that the proto types as enums: JSON key -> enum prefix.
EXPORT_ENUMS = {"outcome": "BET_OUTCOME_", "risk_level": "RISK_LEVEL_"}


def _timestamp(text: str) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(datetime.fromisoformat(text).astimezone(UTC))
    return value


def raw_event_request() -> pb.GetPredictionRequest:
    """A GetPrediction request carrying a raw football match, every optional set."""

    def quote(bookmaker: str, price: float) -> pb.OddsQuote:
        return pb.OddsQuote(
            bookmaker=bookmaker,
            kind=pb.ODDS_KIND_PRE_CLOSE,
            price=price,
            captured_at=_timestamp("2024-08-15T18:00:00+00:00"),
        )

    market = pb.Market(
        market_key="1x2",
        type=pb.MARKET_TYPE_MATCH_ODDS,
        selections=[
            pb.Selection(name="home", participant="Man United", odds=[quote("pinnacle", 1.62)]),
            pb.Selection(name="draw", odds=[quote("pinnacle", 4.2)]),
            pb.Selection(name="away", participant="Fulham", odds=[quote("pinnacle", 5.6)]),
        ],
    )
    total = pb.Market(
        market_key="total:2.5",
        type=pb.MARKET_TYPE_TOTAL,
        line=2.5,
        selections=[
            pb.Selection(name="over", odds=[quote("bet365", 1.8)]),
            pb.Selection(name="under", odds=[quote("bet365", 2.05)]),
        ],
    )
    event = pb.Event(
        event_key="fd:E0:2024-08-16:Man United:Fulham",
        sport="football",
        competition="E0",
        season="2024-25",
        starts_at=_timestamp("2024-08-16T19:00:00+00:00"),
        matchup=pb.Matchup(home="Man United", away="Fulham"),
        markets=[market, total],
    )
    staking = pb.StakingOptions(
        bankroll=1000.0,
        kelly_multiplier=0.25,
        min_edge=0.02,
        max_stake_fraction=0.02,
        bookmakers=["pinnacle"],
        include_agent_stake=True,
    )
    return pb.GetPredictionRequest(
        raw_event=event, market_key="1x2", staking=staking, model_alias="challenger"
    )


# --- generated code ------------------------------------------------------------------------


def test_committed_modules_match_the_proto(tmp_path: Path) -> None:
    fresh = generate.generate(tmp_path)
    committed = generate.generated_files()
    assert fresh, "protoc generated nothing"
    for relative in sorted(set(fresh) | set(committed)):
        where = f"serve/proto/{relative.as_posix()}"
        assert relative in committed, f"{where} is missing: run make proto"
        assert relative in fresh, f"{where} comes from no proto: delete it, run make proto"
        current = (generate.PROTO_ROOT / relative).read_bytes()
        assert (tmp_path / relative).read_bytes() == current, f"{where} is stale: run make proto"


def test_generated_modules_import_as_a_package() -> None:
    grpc_source = Path(pb_grpc.__file__).read_text(encoding="utf-8")
    assert "from serve.proto.betml.v1 import ml_service_pb2" in grpc_source
    assert not re.search(r"^(from|import) betml\b", grpc_source, re.MULTILINE)
    assert pb.GetPredictionRequest.__module__ == "serve.proto.betml.v1.ml_service_pb2"


def test_make_proto_entry_point_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "serve.proto.generate", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=generate.PROTO_ROOT.parents[1],
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "betml/v1/ml_service_pb2_grpc.py").exists()


# --- descriptors -----------------------------------------------------------------------------


def test_service_has_the_unary_rpcs_named_by_buf_style() -> None:
    service = pb.DESCRIPTOR.services_by_name["MLService"]
    assert service.full_name == "betml.v1.MLService"
    assert [m.name for m in service.methods] == RPCS
    for method in service.methods:
        assert method.input_type.name == f"{method.name}Request"
        assert method.output_type.name == f"{method.name}Response"
        assert not method.client_streaming and not method.server_streaming


def test_file_has_package_and_go_package() -> None:
    assert pb.DESCRIPTOR.name == PROTO_FILE
    assert pb.DESCRIPTOR.package == "betml.v1"
    assert pb.DESCRIPTOR.GetOptions().go_package == GO_PACKAGE
    imports = {d.name for d in pb.DESCRIPTOR.dependencies}
    assert imports <= {"google/protobuf/timestamp.proto", "google/protobuf/struct.proto"}


def _enums(message: Descriptor) -> Iterator[EnumDescriptor]:
    yield from message.enum_types
    for nested in message.nested_types:
        yield from _enums(nested)


def test_enums_are_prefixed_and_start_unspecified() -> None:
    enums = list(pb.DESCRIPTOR.enum_types_by_name.values())
    for message in pb.DESCRIPTOR.message_types_by_name.values():
        enums.extend(_enums(message))
    assert {e.name for e in enums} >= {"SignalTier", "OddsKind", "MarketType", "ModelState"}
    for enum in enums:
        prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"
        assert enum.values[0].number == 0
        assert enum.values[0].name == f"{prefix}UNSPECIFIED", enum.name
        assert all(v.name.startswith(prefix) for v in enum.values), enum.name


def test_signal_tiers_match_the_domain_tiers() -> None:
    from betting.odds import SignalTier

    names = {v.name for v in pb.SignalTier.DESCRIPTOR.values}
    assert names == {"SIGNAL_TIER_UNSPECIFIED"} | {f"SIGNAL_TIER_{t.value}" for t in SignalTier}


def test_optional_numbers_track_presence() -> None:
    staking = pb.StakingOptions()
    assert not staking.HasField("bankroll")
    staking.bankroll = 0.0
    assert staking.HasField("bankroll")
    assert pb.Market.DESCRIPTOR.fields_by_name["line"].has_presence
    assert pb.SelectionPrediction.DESCRIPTOR.fields_by_name["recommended_stake"].has_presence


def _source_info(tmp_path: Path) -> descriptor_pb2.FileDescriptorProto:
    out = tmp_path / "set.pb"
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={generate.PROTO_ROOT}",
        f"--proto_path={generate.bundled_include()}",
        "--include_source_info",
        f"--descriptor_set_out={out}",
        PROTO_FILE,
    ]
    subprocess.run(command, check=True, capture_output=True)
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    return next(f for f in files if f.name == PROTO_FILE)


def _elements(proto: descriptor_pb2.FileDescriptorProto) -> Iterator[tuple[tuple[int, ...], str]]:
    """(source path, name) of every service, method, message, field, enum and enum value."""
    message_field = descriptor_pb2.FileDescriptorProto.MESSAGE_TYPE_FIELD_NUMBER
    enum_field = descriptor_pb2.FileDescriptorProto.ENUM_TYPE_FIELD_NUMBER
    service_field = descriptor_pb2.FileDescriptorProto.SERVICE_FIELD_NUMBER

    def enum(path: tuple[int, ...], e: descriptor_pb2.EnumDescriptorProto) -> Iterator[Any]:
        yield path, e.name
        for i, value in enumerate(e.value):
            yield (*path, 2, i), f"{e.name}.{value.name}"

    def message(path: tuple[int, ...], m: descriptor_pb2.DescriptorProto) -> Iterator[Any]:
        yield path, m.name
        for i, field in enumerate(m.field):
            yield (*path, 2, i), f"{m.name}.{field.name}"
        for i, nested in enumerate(m.nested_type):
            if not nested.options.map_entry:
                yield from message((*path, 3, i), nested)
        for i, nested_enum in enumerate(m.enum_type):
            yield from enum((*path, 4, i), nested_enum)

    for i, m in enumerate(proto.message_type):
        yield from message((message_field, i), m)
    for i, e in enumerate(proto.enum_type):
        yield from enum((enum_field, i), e)
    for i, s in enumerate(proto.service):
        yield (service_field, i), s.name
        for j, method in enumerate(s.method):
            yield (service_field, i, 2, j), f"{s.name}.{method.name}"


def test_every_element_has_a_comment(tmp_path: Path) -> None:
    proto = _source_info(tmp_path)
    comments = {
        tuple(loc.path): loc.leading_comments.strip()
        for loc in proto.source_code_info.location
        if loc.leading_comments.strip()
    }
    elements = list(_elements(proto))
    assert len(elements) > 200
    undocumented = [name for path, name in elements if path not in comments]
    assert not undocumented, f"add a comment to: {undocumented}"


# --- serialization ---------------------------------------------------------------------------


def test_raw_event_request_round_trips() -> None:
    request = raw_event_request()
    again = pb.GetPredictionRequest.FromString(request.SerializeToString())
    assert again == request
    assert again.WhichOneof("event") == "raw_event"
    assert again.raw_event.WhichOneof("participants") == "matchup"
    assert again.raw_event.markets[1].HasField("line")
    assert not again.raw_event.markets[0].HasField("line")
    assert again.staking.bankroll == 1000.0
    assert again.raw_event.starts_at.ToDatetime(tzinfo=UTC) == datetime(2024, 8, 16, 19, tzinfo=UTC)
    assert pickle.loads(pickle.dumps(request)) == request


def test_stored_event_request_round_trips() -> None:
    request = pb.GetPredictionRequest(event_key="sim:SIM-FB1:0001", market_key="1x2")
    again = pb.GetPredictionRequest.FromString(request.SerializeToString())
    assert again == request
    assert again.WhichOneof("event") == "event_key"
    assert not again.HasField("raw_event")
    assert not again.HasField("staking")
    assert pickle.loads(pickle.dumps(request)) == request


def test_oneof_branches_replace_each_other() -> None:
    request = raw_event_request()
    request.event_key = "sim:SIM-FB1:0001"
    assert request.WhichOneof("event") == "event_key"
    assert not request.HasField("raw_event")
    race = pb.Event(sport="racing", race=pb.Race(runners=["Alpha", "Bravo", "Charlie"]))
    assert pb.Event.FromString(race.SerializeToString()).WhichOneof("participants") == "race"


def test_evaluate_strategy_request_round_trips_both_branches() -> None:
    key = pb.BacktestRunKey(
        strategy_id="value-pinnacle-fair",
        strategy_version="1.2.0",
        period_start=_timestamp("2023-08-09T00:00:00+00:00"),
        period_end=_timestamp("2024-05-20T00:00:00+00:00"),
    )
    stored = pb.EvaluateStrategyRequest(stored_run=key)
    historical = pb.MethodMetrics(sharpe_ratio=0.5, max_drawdown=0.01, roi=0.2, win_rate=0.3)
    raw = pb.EvaluateStrategyRequest(
        raw_backtest=pb.StrategyBacktest(
            strategy=pb.Strategy(id="s", name="S", version="1"),
            metrics=pb.BacktestMetrics(historical=historical),
        )
    )
    for request, branch in ((stored, "stored_run"), (raw, "raw_backtest")):
        again = pb.EvaluateStrategyRequest.FromString(request.SerializeToString())
        assert again == request
        assert again.WhichOneof("backtest") == branch
    assert not raw.raw_backtest.metrics.historical.HasField("profit_factor")


def test_batch_results_carry_a_prediction_or_an_error() -> None:
    prediction = pb.GetPredictionResponse(
        event_key="e1",
        market_key="1x2",
        selections=[pb.SelectionPrediction(selection="home", tier=pb.SIGNAL_TIER_B, is_bet=True)],
        model=pb.ModelInfo(name="betml-ensemble-football-1x2", version="3", alias="champion"),
    )
    error = pb.ItemError(
        code=grpc.StatusCode.INVALID_ARGUMENT.value[0],
        message="odds must be finite decimal prices above 1.0, got 0.9",
        field_violations=[
            pb.FieldViolation(field="raw_event.markets[0].selections[1].odds[0].price")
        ],
    )
    response = pb.BatchPredictResponse(
        results=[pb.BatchPredictResult(prediction=prediction), pb.BatchPredictResult(error=error)]
    )
    again = pb.BatchPredictResponse.FromString(response.SerializeToString())
    assert [r.WhichOneof("result") for r in again.results] == ["prediction", "error"]
    assert again.results[1].error.code == 3


# --- the Go backtester's export ------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "message"), EXPORT_MIRRORS, ids=[m.__name__ for m, _ in EXPORT_MIRRORS]
)
def test_backtest_messages_mirror_the_export_fields(
    model: type[BaseModel], message: Descriptor
) -> None:
    assert set(message.fields_by_name) == set(model.model_fields), message.name
    for name, info in model.model_fields.items():
        nullable = info.default is None and not info.is_required()
        field = message.fields_by_name[name]
        if nullable and field.type != field.TYPE_MESSAGE:
            assert field.has_presence, f"{message.name}.{name} is nullable: make it optional"


def _convert_enums(value: Any, to_proto: bool) -> Any:
    if isinstance(value, list):
        return [_convert_enums(v, to_proto) for v in value]
    if not isinstance(value, dict):
        return value
    converted = {}
    for key, item in value.items():
        if key in EXPORT_ENUMS and isinstance(item, str):
            prefix = EXPORT_ENUMS[key]
            item = prefix + item.upper() if to_proto else item.removeprefix(prefix).lower()
        converted[key] = _convert_enums(item, to_proto)
    return converted


def test_example_export_round_trips_through_the_proto() -> None:
    document = json.loads(export.EXAMPLE_PATH.read_text(encoding="utf-8"))
    message = json_format.ParseDict(_convert_enums(document, to_proto=True), pb.BacktestExport())
    request = pb.SubmitBacktestFeedbackRequest(export=message)
    wire = pb.SubmitBacktestFeedbackRequest.FromString(request.SerializeToString()).export
    back = json_format.MessageToDict(
        wire, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    assert export.MLExport.model_validate(
        _convert_enums(back, to_proto=False)
    ) == export.MLExport.model_validate(document)


# --- the generated stub against a real server --------------------------------------------------


class _Health(pb_grpc.MLServiceServicer):
    def HealthCheck(
        self, request: pb.HealthCheckRequest, context: grpc.ServicerContext
    ) -> pb.HealthCheckResponse:
        model = pb.ModelHealth(name="betml-ensemble-football-1x2", state=pb.MODEL_STATE_LOADING)
        return pb.HealthCheckResponse(status=pb.SERVING_STATUS_NOT_SERVING, models=[model])


def test_stub_calls_a_real_server() -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_MLServiceServicer_to_server(_Health(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.MLServiceStub(channel)
            health = stub.HealthCheck(pb.HealthCheckRequest(), timeout=10)
            assert health.models[0].state == pb.MODEL_STATE_LOADING
            with pytest.raises(grpc.RpcError) as raised:
                stub.GetPrediction(raw_event_request(), timeout=10)
            assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        server.stop(None)
