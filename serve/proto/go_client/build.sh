#!/usr/bin/env bash
# Generate the Go code of betml.v1.MLService from serve/proto and build the example Go client.
#
# Usage: serve/proto/go_client/build.sh [GOPATH_DIR]   (default var/go; make proto-go)
#
# Needs go, protoc-gen-go and protoc-gen-go-grpc on PATH and the Go libraries (google.golang.org/
# grpc, google.golang.org/protobuf, genproto) in /usr/share/gocode, as Debian's golang-go,
# protoc-gen-go, protoc-gen-go-grpc and golang-google-grpc-dev packages install them. It builds in
# GOPATH mode (no network): the generated package lands at its go_package import path,
# GOPATH_DIR/src/github.com/betml/betml/gen/go/betml/v1, and the binary at
# GOPATH_DIR/bin/betml-grpc-example. protoc is the one of grpcio-tools (PYTHON, default
# .venv/bin/python), the same that generates the Python modules.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
gopath="$(mkdir -p "${1:-$root/var/go}" && cd "${1:-$root/var/go}" && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
case "$python" in */*) python="$(cd "$(dirname "$python")" && pwd)/$(basename "$python")" ;; esac

for tool in go protoc-gen-go protoc-gen-go-grpc; do
    command -v "$tool" >/dev/null || { echo "error: $tool is not on PATH" >&2; exit 3; }
done

include="$(cd "$root" && "$python" -c 'from serve.proto.generate import bundled_include; print(bundled_include())')"
package_dir="$gopath/src/github.com/betml/betml/gen/go/betml/v1"
command_dir="$gopath/src/github.com/betml/betml/cmd/betml-grpc-example"
rm -rf "$package_dir" "$command_dir"
mkdir -p "$package_dir" "$command_dir" "$gopath/bin"

cd "$root/serve/proto"
"$python" -m grpc_tools.protoc \
    --proto_path=. --proto_path="$include" \
    --plugin=protoc-gen-go="$(command -v protoc-gen-go)" \
    --plugin=protoc-gen-go-grpc="$(command -v protoc-gen-go-grpc)" \
    --go_out="$gopath/src" --go-grpc_out="$gopath/src" \
    betml/v1/ml_service.proto
cp "$here/main.go" "$command_dir/main.go"

export GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOFLAGS=
export GOCACHE="${GOCACHE:-$root/var/go-cache}"
cd "$command_dir"
go vet . "github.com/betml/betml/gen/go/betml/v1"
go build -o "$gopath/bin/betml-grpc-example" .
echo "built $gopath/bin/betml-grpc-example"
