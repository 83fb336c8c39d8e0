#!/usr/bin/env bash
# bench.sh: build kiln and kiln-load, start the standalone (kiln run) in a
# temporary data directory on free ports (with a throwaway redis-server when
# one is installed), wait until it is ready, run
# kiln-load against its HTTP port, embedded NATS, FerretDB and Redis, then
# stop it.
#
#   loadtest/bench.sh [kiln-load flags...]     e.g. loadtest/bench.sh -duration 5s
#
# Result lines (JSON, one per scenario) go to stdout; progress to stderr.
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
redis_pid=""
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
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	if [[ -n "$redis_pid" ]] && kill -0 "$redis_pid" 2>/dev/null; then
		kill -TERM "$redis_pid" 2>/dev/null || true
		wait "$redis_pid" 2>/dev/null || true
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
go build -o "$tmp/kiln-rtbench" ./realtime/cmd/kiln-rtbench
go build -o "$tmp/kiln-webhooks" ./loadtest/cmd/kiln-webhooks

http_port="$(free_port)"
admin_port="$(free_port)"
nats_port="$(free_port)"
mongo_port="$(free_port)"
grpc_port="$(free_port)"

# Redis: a real redis-server when one is installed (the projector_throughput
# and replay_rate targets are for Redis itself), else the standalone's
# in-process one. BENCH_REDIS_URL points at a Redis of your own instead.
redis_port="$(free_port)"
redis_url="${BENCH_REDIS_URL:-}"
if [[ -z "$redis_url" ]] && command -v redis-server >/dev/null; then
	redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" \
		>"$tmp/redis.log" 2>&1 &
	redis_pid=$!
	redis_url="redis://127.0.0.1:$redis_port/0"
	echo "bench.sh: redis-server (pid $redis_pid) on :$redis_port" >&2
elif [[ -z "$redis_url" ]]; then
	echo "bench.sh: no redis-server on PATH; using the standalone's in-process Redis (slow: not a Redis benchmark)" >&2
	redis_url="redis://127.0.0.1:$redis_port/0"
fi

redis_env="REDIS_PORT=$redis_port"
if [[ -n "$redis_pid" || -n "${BENCH_REDIS_URL:-}" ]]; then
	redis_env="REDIS_URL=$redis_url"
fi

env KILN_DATA_DIR="$tmp/data" PORT="$http_port" ADMIN_PORT="$admin_port" NATS_PORT="$nats_port" \
	MONGO_PORT="$mongo_port" GRPC_ADDR="127.0.0.1:$grpc_port" LOG_LEVEL="${BENCH_LOG_LEVEL:-warn}" "$redis_env" \
	WEBHOOKS_ALLOW_NETWORKS=127.0.0.0/8 \
	"$tmp/kiln" run >"$tmp/standalone.log" 2>&1 &
pid=$!

echo "bench.sh: waiting for kiln-standalone (pid $pid) on :$http_port" >&2
for i in $(seq 1 120); do
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "bench.sh: kiln-standalone exited; its log:" >&2
		cat "$tmp/standalone.log" >&2
		exit 1
	fi
	if [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http_port/readyz")" == 200 ]]; then
		break
	fi
	if [[ $i -eq 120 ]]; then
		echo "bench.sh: kiln-standalone not ready after 60s; its log:" >&2
		cat "$tmp/standalone.log" >&2
		exit 1
	fi
	sleep 0.5
done

# sse_fanout's clients use a gateway of their own (kiln serve gateway, fed by the
# standalone's NATS, FerretDB and Redis), so the memory per client is read
# from a process that serves nothing else; events are still posted to the
# standalone's ingest.
gw_port="$(free_port)"
gw_admin_port="$(free_port)"
GATEWAY_ADDR="127.0.0.1:$gw_port" GATEWAY_ADMIN_ADDR="127.0.0.1:$gw_admin_port" \
	NATS_URL="nats://127.0.0.1:$nats_port" MONGO_URI="mongodb://127.0.0.1:$mongo_port" REDIS_URL="$redis_url" \
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
# from eating the CPU of the next; flags given to bench.sh come last and win.
"$tmp/kiln-load" -url "http://127.0.0.1:$http_port" -nats "nats://127.0.0.1:$nats_port" \
	-mongo "mongodb://127.0.0.1:$mongo_port" -redis "$redis_url" \
	-sse-url "http://127.0.0.1:$gw_port" -gateway-pid "$gw_pid" -purge-ingested -settle 60s "$@"

# grpc_publish (gRPC Publish batches against POST /events batches, same
# run) and socketio_fanout (2,000 /chat clients of a lean Go Socket.IO
# client inside kiln-rtbench, 1,000 messages/s; it reports its own CPU and
# the standalone's). BENCH_REALTIME=0 skips them; BENCH_REALTIME_FLAGS
# passes kiln-rtbench flags (e.g. -sio-clients 500).
if [[ "${BENCH_REALTIME:-1}" != 0 ]]; then
	# shellcheck disable=SC2086
	"$tmp/kiln-rtbench" -url "http://127.0.0.1:$http_port" -grpc "127.0.0.1:$grpc_port" -pid "$pid" \
		${BENCH_REALTIME_FLAGS:-}
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
		${BENCH_WEBHOOKS_FLAGS:-}
fi
