#!/usr/bin/env bash
# burst.sh: the issue-12 burst against a running `make run`: posts 1,000,000
# events in batches of 1,000 as fast as ingest accepts them, reads
# GET /events?limit=50 throughout, waits until every projection has reached
# the stream's last sequence, and prints one JSON line (see docs/benchmarks.md,
# "The burst"). The standalone's NATS address comes from its discovery file
# (KILN_DATA_DIR, default ./data); flags are passed to kiln-burst.
#
#   make run &            # in another terminal
#   loadtest/burst.sh                      # 1,000,000 events
#   loadtest/burst.sh -events 200000       # a shorter run
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
data="${KILN_DATA_DIR:-./data}"
nats="${NATS_URL:-}"
if [[ -z "$nats" && -f "$data/kiln-standalone.json" ]]; then
	nats="$(sed -n 's/.*"natsUrl": *"\([^"]*\)".*/\1/p' "$data/kiln-standalone.json")"
fi
nats="${nats:-nats://127.0.0.1:4222}"
url="${KILN_URL:-http://127.0.0.1:8080}"
go build -o "${TMPDIR:-/tmp}/kiln-burst" ./loadtest/cmd/kiln-burst
exec "${TMPDIR:-/tmp}/kiln-burst" -url "$url" -nats "$nats" "$@"
