#!/usr/bin/env bash
# bench.sh: build kiln and kiln-load, start the standalone as `make run`
# does (kiln run in a fresh working directory: the default relative ./data,
# its own Redis choice — a redis-server child, else the in-process
# miniredis), only on free ports, wait until it is ready, run kiln-load
# against its HTTP port, embedded NATS, FerretDB and Redis (named by the
# standalone's data/kiln-standalone.json), then stop it.
#
#   loadtest/bench.sh [kiln-load flags...]     e.g. loadtest/bench.sh -duration 5s
#
# Result lines (JSON, one per scenario) go to stdout, each with "redis" and
# "mongo": what the standalone ran against; progress to stderr.
# BENCH_REDIS_URL gives the standalone a Redis of your own (REDIS_URL).
# Set BENCH_KEEP=1 to keep the temporary directory (data and server log).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

command -v curl >/dev/null || { echo "bench.sh: curl is required" >&2; exit 1; }

# sse_fanout holds about 2,000 streams open: a descriptor each in kiln-load
# and in the standalone. Raise the soft limit as far as the hard one allows.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [[ "$(ulimit -n)" != unlimited && "$(ulimit -n)" -lt 8192 ]]; then
	echo "bench.sh: open-files limit $(ulimit -n) is below 8192; sse_fanout may fail (raise ulimit -n)" >&2
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench.XXXXXX")"
pid=""
gw_pid=""
cleanup() {
	status=$?
	if [[ -n "$gw_pid" ]] && kill -0 "$gw_pid" 2>/dev/null; then
		kill -TERM "$gw_pid" 2>/dev/null || true
		for _ in $(seq 1 50); do kill -0 "$gw_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$gw_pid" 2>/dev/null || true
		wait "$gw_pid" 2>/dev/null || true
	fi
	if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
		# Its children (the redis-server) go with it; killed if it is killed.
		children="$(cat /proc/"$pid"/task/*/children 2>/dev/null || true)"
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		for c in $children; do kill -KILL "$c" 2>/dev/null || true; done
	fi
	if [[ "${BENCH_KEEP:-}" == 1 || $status -ne 0 ]]; then
		echo "bench.sh: kept $tmp (server log: $tmp/standalone.log)" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port prints a TCP port nothing listens on, not handed out before.
taken=" "
free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 40000))
		[[ "$taken" == *" $p "* ]] && continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			taken+="$p "
			echo "$p"
			return
		fi
	done
	echo "bench.sh: no free port found" >&2
	exit 1
}

echo "bench.sh: building into $tmp" >&2
go build -o "$tmp/kiln" ./cli/cmd/kiln
go build -o "$tmp/kiln-load" ./loadtest/cmd/kiln-load
go build -o "$tmp/kiln-rtbench" ./loadtest/cmd/kiln-rtbench
go build -o "$tmp/kiln-webhooks" ./loadtest/cmd/kiln-webhooks

http_port="$(free_port)"
admin_port="$(free_port)"
nats_port="$(free_port)"
mongo_port="$(free_port)"
grpc_port="$(free_port)"

# The standalone runs in $tmp/run as `make run` runs in a clone: no
# KILN_DATA_DIR (./data), no Redis settings unless BENCH_REDIS_URL.
mkdir -p "$tmp/run"
redis_env=()
if [[ -n "${BENCH_REDIS_URL:-}" ]]; then
	redis_env=("REDIS_URL=$BENCH_REDIS_URL")
fi
command -v redis-server >/dev/null || [[ -n "${BENCH_REDIS_URL:-}" ]] ||
	echo "bench.sh: no redis-server on PATH (make run installs it): the standalone falls back to the in-process miniredis (slow reads)" >&2

(cd "$tmp/run" && exec env -u KILN_DATA_DIR -u REDIS_URL -u REDIS_PORT -u MONGO_URI \
	PORT="$http_port" ADMIN_PORT="$admin_port" NATS_PORT="$nats_port" \
	MONGO_PORT="$mongo_port" GRPC_ADDR="127.0.0.1:$grpc_port" LOG_LEVEL="${BENCH_LOG_LEVEL:-info}" \
	WEBHOOKS_ALLOW_NETWORKS=127.0.0.0/8 ADMIN_PPROF="${BENCH_PPROF:-false}" "${redis_env[@]}" \
	"$tmp/kiln" run) >"$tmp/standalone.log" 2>&1 &
pid=$!

echo "bench.sh: waiting for kiln-standalone (pid $pid) on :$http_port" >&2
for i in $(seq 1 600); do
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "bench.sh: kiln-standalone exited; its log:" >&2
		cat "$tmp/standalone.log" >&2
		exit 1
	fi
	if [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http_port/readyz")" == 200 ]]; then
		break
	fi
	if [[ $i -eq 600 ]]; then
		echo "bench.sh: kiln-standalone not ready after 5 minutes; its log:" >&2
		cat "$tmp/standalone.log" >&2
		exit 1
	fi
	sleep 0.5
done

# What the standalone runs against, from its discovery file.
discovery="$tmp/run/data/kiln-standalone.json"
field() { sed -n "s/^ *\"$1\": \"\(.*\)\",\{0,1\}\$/\1/p" "$discovery"; }
redis_url="$(field redisUrl)"
mongo_uri="$(field mongoUri)"
redis_kind="$(field redis)"
store_kind="$(field store)"
if [[ -z "$redis_url" || -z "$mongo_uri" ]]; then
	echo "bench.sh: $discovery names no Redis or MongoDB:" >&2
	cat "$discovery" >&2
	exit 1
fi
echo "bench.sh: kiln-standalone (pid $pid) on :$http_port, Redis: $redis_kind ($redis_url), store: $store_kind" >&2
grep -E 'msg="redis: ' "$tmp/standalone.log" >&2 || true

# label adds "redis" and "mongo" to every JSON result line ("mongo", not
# "store": the projector_throughput and replay_rate lines have a "store" of
# their own, the read model they write).
label() {
	sed -u "/^{.*}\$/ s|}\$|,\"redis\":\"${redis_kind//|/}\",\"mongo\":\"${store_kind//|/}\"}|"
}

# sse_fanout's clients use a gateway of their own (kiln serve gateway, fed by the
# standalone's NATS, FerretDB and Redis), so the memory per client is read
# from a process that serves nothing else; events are still posted to the
# standalone's ingest.
gw_port="$(free_port)"
gw_admin_port="$(free_port)"
GATEWAY_ADDR="127.0.0.1:$gw_port" GATEWAY_ADMIN_ADDR="127.0.0.1:$gw_admin_port" \
	NATS_URL="nats://127.0.0.1:$nats_port" MONGO_URI="$mongo_uri" REDIS_URL="$redis_url" \
	LOG_LEVEL="${BENCH_LOG_LEVEL:-warn}" "$tmp/kiln" serve gateway >"$tmp/gateway.log" 2>&1 &
gw_pid=$!
for i in $(seq 1 60); do
	if [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$gw_port/readyz")" == 200 ]]; then
		break
	fi
	if ! kill -0 "$gw_pid" 2>/dev/null || [[ $i -eq 60 ]]; then
		echo "bench.sh: kiln-gateway (for sse_fanout) not ready; its log:" >&2
		cat "$tmp/gateway.log" >&2
		exit 1
	fi
	sleep 0.5
done

# The standalone projects every event into its read models in the same
# process. -purge-ingested and -settle keep one phase's projection backlog
# from eating the CPU of the next (FerretDB projects ~5,000 events/s here:
# a replay_rate after the ingest scenarios waited 60 s and still began with
# 40,000 events to project, and measured 6,091 ev/s instead of 117,000);
# flags given to bench.sh come last and win.
"$tmp/kiln-load" -url "http://127.0.0.1:$http_port" -nats "nats://127.0.0.1:$nats_port" \
	-mongo "$mongo_uri" -redis "$redis_url" \
	-sse-url "http://127.0.0.1:$gw_port" -gateway-pid "$gw_pid" -purge-ingested -settle 240s "$@" | label

# grpc_publish (gRPC Publish batches against POST /events batches, same
# run) and socketio_fanout (2,000 /chat clients of a lean Go Socket.IO
# client inside kiln-rtbench, 1,000 messages/s; it reports its own CPU and
# the standalone's). BENCH_REALTIME=0 skips them; BENCH_REALTIME_FLAGS
# passes kiln-rtbench flags (e.g. -sio-clients 500).
if [[ "${BENCH_REALTIME:-1}" != 0 ]]; then
	# shellcheck disable=SC2086
	"$tmp/kiln-rtbench" -url "http://127.0.0.1:$http_port" -grpc "127.0.0.1:$grpc_port" -pid "$pid" \
		${BENCH_REALTIME_FLAGS:-} | label
fi

# webhook_verify (Standard Webhooks verifications/s in process, against a
# bare HMAC) and webhook_dispatch (200 endpoints x 1,000 events delivered
# by the standalone's dispatcher to a local receiver, against the receiver
# taking signed POSTs directly; the standalone's goroutines and RSS before
# and at peak). The standalone's SSRF guard lets 127.0.0.0/8 through for it.
# BENCH_WEBHOOKS=0 skips them; BENCH_WEBHOOKS_FLAGS passes kiln-webhooks flags.
if [[ "${BENCH_WEBHOOKS:-1}" != 0 ]]; then
	# shellcheck disable=SC2086
	"$tmp/kiln-webhooks" -url "http://127.0.0.1:$http_port" -admin-url "http://127.0.0.1:$admin_port" \
		${BENCH_WEBHOOKS_FLAGS:-} | label
fi
