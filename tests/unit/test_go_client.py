"""A Go client generated from the proto talks to a Python gRPC server (slow: builds Go code).

serve/proto/go_client/build.sh generates the Go package from ml_service.proto and builds the
example client; the client then calls a real in-process gRPC server holding a stand-in
recommender (margin-free reference prices as the "model", betting.odds for the rest). It checks
what a Go service depends on: the bytes Go writes decode as the Python messages (both oneof
branches), the x-api-key metadata arrives, and the error details the README promises
(google.rpc.BadRequest, ResourceInfo) reach Go intact.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from google.protobuf.message import Message

from betting.features import FEATURE_SCHEMA_VERSION
from betting.odds import recommend, remove_margin
from serve.proto.betml.v1 import ml_service_pb2 as pb
from serve.proto.betml.v1 import ml_service_pb2_grpc as pb_grpc

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "serve" / "proto" / "go_client" / "build.sh"
GO_LIBRARIES = Path("/usr/share/gocode/src/google.golang.org/grpc")
API_KEY = "test-key"
MODEL = pb.ModelInfo(
    name="betml-ensemble-football-1x2", version="3", alias="champion", feature_schema_version="1"
)


def _missing_go_tools() -> str | None:
    missing = [t for t in ("go", "protoc-gen-go", "protoc-gen-go-grpc") if not shutil.which(t)]
    if missing:
        return (
            f"{', '.join(missing)} not on PATH (Debian: apt-get install golang-go protoc-gen-go "
            "protoc-gen-go-grpc golang-google-grpc-dev golang-github-golang-protobuf-1-5-dev)"
        )
    if not GO_LIBRARIES.is_dir():
        return f"Go gRPC library not in {GO_LIBRARIES} (Debian: golang-google-grpc-dev)"
    return None


def _rich_status(
    context: grpc.ServicerContext, code: grpc.StatusCode, message: str, detail: Message
) -> None:
    """Abort with google.rpc.Status in grpc-status-details-bin, as the README specifies."""
    from google.protobuf import any_pb2
    from google.rpc import status_pb2

    packed = any_pb2.Any()
    packed.Pack(detail)
    status = status_pb2.Status(code=code.value[0], message=message, details=[packed])
    context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
    context.abort(code, message)


class StandInRecommender(pb_grpc.MLServiceServicer):
    """HealthCheck and GetPrediction over raw events; records what it received."""

    def __init__(self) -> None:
        self.requests: list[pb.GetPredictionRequest] = []
        self.api_keys: list[str | None] = []

    def HealthCheck(
        self, request: pb.HealthCheckRequest, context: grpc.ServicerContext
    ) -> pb.HealthCheckResponse:
        model = pb.ModelHealth(
            name=MODEL.name, alias=MODEL.alias, version=MODEL.version, state=pb.MODEL_STATE_LOADED
        )
        return pb.HealthCheckResponse(
            status=pb.SERVING_STATUS_SERVING,
            models=[model],
            service_version="0.1.0",
            feature_schema_version=FEATURE_SCHEMA_VERSION,
        )

    def GetPrediction(
        self, request: pb.GetPredictionRequest, context: grpc.ServicerContext
    ) -> pb.GetPredictionResponse:
        from google.rpc import error_details_pb2

        self.requests.append(request)
        key = dict(context.invocation_metadata()).get("x-api-key")
        self.api_keys.append(key)
        if key != API_KEY:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "x-api-key metadata is missing")
        if request.WhichOneof("event") == "event_key":
            info = error_details_pb2.ResourceInfo(
                resource_type="event", resource_name=request.event_key
            )
            _rich_status(
                context, grpc.StatusCode.NOT_FOUND, f"no event {request.event_key!r}", info
            )
        staking = request.staking
        if staking.bankroll < 0:
            reason = f"bankroll must be finite and >= 0, got {staking.bankroll!r}"
            violation = error_details_pb2.BadRequest.FieldViolation(
                field="staking.bankroll", description=reason
            )
            bad = error_details_pb2.BadRequest(field_violations=[violation])
            _rich_status(
                context, grpc.StatusCode.INVALID_ARGUMENT, f"staking.bankroll: {reason}", bad
            )
        market = request.raw_event.markets[0]
        reference = [
            next(q.price for q in s.odds if q.bookmaker == "pinnacle") for s in market.selections
        ]
        answers = []
        for selection, probability in zip(market.selections, remove_margin(reference), strict=True):
            best = max(selection.odds, key=lambda q: q.price)
            rec = recommend(
                float(probability),
                best.price,
                bankroll=staking.bankroll,
                kelly_multiplier=staking.kelly_multiplier,
                min_edge=staking.min_edge,
            )
            answers.append(
                pb.SelectionPrediction(
                    selection=selection.name,
                    probability=rec.probability,
                    fair_odds=rec.fair_odds,
                    odds=rec.odds,
                    bookmaker=best.bookmaker,
                    expected_value=rec.expected_value,
                    kelly_fraction=rec.kelly_fraction,
                    stake_fraction=rec.stake / staking.bankroll,
                    recommended_stake=rec.stake,
                    minimum_acceptable_odds=rec.minimum_acceptable_odds,
                    tier=pb.SignalTier.Value(f"SIGNAL_TIER_{rec.tier.value}"),
                    is_bet=rec.is_bet,
                )
            )
        return pb.GetPredictionResponse(
            event_key="derived:arsenal-chelsea",
            market_key=market.market_key,
            selections=answers,
            model=MODEL,
        )


@pytest.fixture(scope="module")
def go_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = _missing_go_tools()
    if reason:
        pytest.skip(reason)
    gopath = tmp_path_factory.mktemp("gopath")
    done = subprocess.run(
        [str(BUILD_SCRIPT), str(gopath)],
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHON": sys.executable},
        timeout=540,
        check=False,
    )
    assert done.returncode == 0, f"build.sh failed:\n{done.stdout}\n{done.stderr}"
    return gopath / "bin" / "betml-grpc-example"


@pytest.fixture
def server() -> Iterator[tuple[StandInRecommender, str]]:
    servicer = StandInRecommender()
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_MLServiceServicer_to_server(servicer, grpc_server)
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()
    yield servicer, f"127.0.0.1:{port}"
    grpc_server.stop(None)


def _run(client: Path, address: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "BETML_API_KEY"}
    command = [str(client), "-addr", address, "-timeout", "20s", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)


def test_go_client_gets_a_prediction_for_a_raw_event(
    go_client: Path, server: tuple[StandInRecommender, str]
) -> None:
    servicer, address = server
    done = _run(go_client, address, "-api-key", API_KEY)
    assert done.returncode == 0, done.stderr
    assert "health: SERVING_STATUS_SERVING" in done.stdout
    assert "MODEL_STATE_LOADED" in done.stdout
    assert "by betml-ensemble-football-1x2 version 3" in done.stdout
    lines = [line.split() for line in done.stdout.splitlines() if line.startswith("  ")]
    assert [line[0] for line in lines[1:]] == ["home", "draw", "away"]
    assert all(line[-1].startswith("SIGNAL_TIER_") for line in lines[1:])
    assert servicer.api_keys == [API_KEY]
    request = servicer.requests[0]
    assert request.WhichOneof("event") == "raw_event"
    event = request.raw_event
    assert event.WhichOneof("participants") == "matchup"
    assert (event.matchup.home, event.matchup.away) == ("Arsenal", "Chelsea")
    assert event.markets[0].type == pb.MARKET_TYPE_MATCH_ODDS
    assert not event.markets[0].HasField("line")
    assert event.markets[0].selections[0].odds[0].kind == pb.ODDS_KIND_PRE_CLOSE
    assert event.starts_at.seconds > 0
    assert request.staking.HasField("bankroll") and request.staking.bankroll == 1000.0


def test_go_client_reads_bad_field_details(
    go_client: Path, server: tuple[StandInRecommender, str]
) -> None:
    _, address = server
    done = _run(go_client, address, "-api-key", API_KEY, "-bankroll", "-5")
    assert done.returncode == 2
    assert "GetPrediction failed: InvalidArgument" in done.stderr
    assert "bad field staking.bankroll: bankroll must be finite and >= 0" in done.stderr


def test_go_client_names_a_stored_event(
    go_client: Path, server: tuple[StandInRecommender, str]
) -> None:
    servicer, address = server
    done = _run(go_client, address, "-api-key", API_KEY, "-event-key", "sim:X:1", "-market", "1x2")
    assert done.returncode == 2
    assert "GetPrediction failed: NotFound" in done.stderr
    assert 'unknown event "sim:X:1"' in done.stderr
    request = servicer.requests[0]
    assert request.WhichOneof("event") == "event_key"
    assert (request.event_key, request.market_key) == ("sim:X:1", "1x2")


def test_go_client_without_api_key_is_unauthenticated(
    go_client: Path, server: tuple[StandInRecommender, str]
) -> None:
    servicer, address = server
    done = _run(go_client, address)
    assert done.returncode == 2
    assert "GetPrediction failed: Unauthenticated" in done.stderr
    assert servicer.api_keys == [None]


def _readme_go_commands() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## gRPC contract", 1)[1].split("\n## ", 1)[0]
    blocks = section.split("```bash\n")[1:]
    return next(block.split("```", 1)[0] for block in blocks if "protoc -I" in block)


def test_readme_go_generation_commands_work(tmp_path: Path) -> None:
    reason = _missing_go_tools()
    if reason or not shutil.which("protoc"):
        pytest.skip(reason or "protoc not on PATH (Debian: protobuf-compiler)")
    commands = _readme_go_commands().replace("-I serve/proto", f"-I {ROOT / 'serve' / 'proto'}")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", commands],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for folder in ("gen/go/betml/v1", "betml/v1"):
        generated = sorted(p.name for p in (tmp_path / folder).iterdir())
        assert generated == ["ml_service.pb.go", "ml_service_grpc.pb.go"], folder
        assert "package betmlv1" in (tmp_path / folder / "ml_service.pb.go").read_text()
