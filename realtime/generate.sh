#!/usr/bin/env bash
# Regenerates the Go code of the protos into OUT (default: this module's
# gen/). Needs protoc (Debian protobuf-compiler; scripts/install-test-deps
# installs it); the plugins are this module's pinned tools (go.mod "tool"),
# built here. gen_test.go runs this into a temporary directory and fails
# when the committed code differs.
set -euo pipefail
cd "$(dirname "$0")"
out="${1:-gen}"
bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/" google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc
mkdir -p "$out"
PATH="$bin:$PATH" protoc -I proto \
  --go_out="$out" --go_opt=module=github.com/kilnhq/kiln/realtime/gen \
  --go-grpc_out="$out" --go-grpc_opt=module=github.com/kilnhq/kiln/realtime/gen \
  orders/v1/orders.proto kiln/v1/events.proto
