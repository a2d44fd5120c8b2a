"""Generate the Python modules of betml's gRPC contract from ``serve/proto/betml/**/*.proto``.

How to run: ``make proto`` (or ``.venv/bin/python -m serve.proto.generate``). It runs
grpcio-tools' bundled protoc with the proto path rooted at ``serve/proto``, so descriptors keep
the file name ``betml/v1/ml_service.proto`` that a Go client generates from, and writes
``*_pb2.py``, ``*_pb2.pyi`` and ``*_pb2_grpc.py`` next to each proto. protoc writes the
cross-module imports of the generated code as ``from betml.v1 import ...`` and gives the message
classes the module name ``betml.v1.ml_service_pb2``; both resolve only with ``serve/proto`` on
``sys.path``, so both are rewritten to ``serve.proto.betml.v1...``: the modules then import as a
package and messages pickle (Ray Serve pickles requests and responses between its proxy and the
replicas).

``tests/unit/test_proto.py`` regenerates into a temporary folder and fails when the committed
modules differ, so edit the proto, run ``make proto`` and commit both.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

#: The proto path root: proto files are named relative to it (``betml/v1/ml_service.proto``).
PROTO_ROOT = Path(__file__).resolve().parent
#: The Python package the proto root is importable as.
PROTO_PACKAGE = "serve.proto"
#: Suffixes of the files protoc generates for each proto.
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")

# "from betml.v1 import ml_service_pb2 as ..." or "import betml.v1.ml_service_pb2".
_ROOTED_IMPORT = re.compile(r"^(\s*)(from|import) (betml(?:\.\w+)*)\b", re.MULTILINE)
# The module name given to the message classes: "BuildTopDescriptorsAndMessages(DESCRIPTOR,
# 'betml.v1.ml_service_pb2', _globals)".
_ROOTED_MODULE_NAME = re.compile(r"'(betml(?:\.\w+)*_pb2)'")


class GenerationError(RuntimeError):
    """protoc failed, or its output could not be made importable."""


def proto_files(root: Path = PROTO_ROOT) -> list[Path]:
    """The proto files under ``root``, relative to it, in a stable order."""
    return sorted(path.relative_to(root) for path in root.glob("betml/**/*.proto"))


def generated_files(root: Path = PROTO_ROOT) -> list[Path]:
    """The generated modules under ``root`` (committed ones, or those of a fresh generation)."""
    return sorted(
        path.relative_to(root)
        for suffix in GENERATED_SUFFIXES
        for path in root.glob(f"betml/**/*{suffix}")
    )


def bundled_include() -> Path:
    """grpcio-tools' copy of the well-known protos (google/protobuf/timestamp.proto, ...)."""
    return Path(str(resources.files("grpc_tools") / "_proto"))


def _package_imports(source: str) -> str:
    """Rewrite imports and module names rooted at the proto path to the modules' package."""
    source = _ROOTED_IMPORT.sub(rf"\1\2 {PROTO_PACKAGE}.\3", source)
    return _ROOTED_MODULE_NAME.sub(rf"'{PROTO_PACKAGE}.\1'", source)


def generate(out_root: Path = PROTO_ROOT, proto_root: Path = PROTO_ROOT) -> list[Path]:
    """Generate the Python modules of every proto under ``proto_root`` into ``out_root``.

    Args:
        out_root: folder standing for ``proto_root`` in the output: ``betml/v1/x.proto`` gives
            ``out_root/betml/v1/x_pb2.py``. The committed modules when it is ``PROTO_ROOT``.
        proto_root: where the proto files are.

    Returns:
        The generated files, relative to ``out_root``.

    Raises:
        GenerationError: when there is no proto or protoc fails.
    """
    protos = proto_files(proto_root)
    if not protos:
        raise GenerationError(f"no .proto files under {proto_root / 'betml'}")
    out_root.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={proto_root}",
        f"--proto_path={bundled_include()}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *(path.as_posix() for path in protos),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise GenerationError(f"protoc failed ({done.returncode}): {done.stderr.strip()}")
    written = generated_files(out_root)
    for relative in written:
        path = out_root / relative
        path.write_text(_package_imports(path.read_text(encoding="utf-8")), encoding="utf-8")
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line: regenerate the committed modules (or into ``--out``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PROTO_ROOT, help="output root folder")
    args = parser.parse_args(argv)
    try:
        written = generate(args.out)
    except GenerationError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for relative in written:
        print(f"wrote {args.out / relative}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
