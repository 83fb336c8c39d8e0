package replay

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/testsupport"
)

// BenchmarkReplay rebuilds each projection from a stream of 50,000 events
// (the replay_rate scenario's default) and reports events/s, and the CPU
// time per event of this process (the replay and the embedded NATS server)
// and of redis-server, which a loaded machine inflates less than the wall
// time; each iteration is one whole replay into a new generation.
//
//	go test -run '^$' -bench Replay -benchtime 3x -cpuprofile cpu.out ./projector/replay/
func BenchmarkReplay(b *testing.B) {
	const events = 50_000
	e := newEnv(b)
	e.publish(b, events)
	for _, p := range Projections() {
		b.Run(p, func(b *testing.B) {
			var took time.Duration
			require.NoError(b, e.deps.Redis.ConfigResetStat(context.Background()).Err())
			self0, redis0 := testsupport.ProcessCPU(b), testsupport.RedisCPU(b, e.deps.Redis)
			for range b.N {
				start := time.Now()
				applied := 0
				_, err := Run(context.Background(), e.deps, Options{
					Projections: []string{p}, Owner: "bench",
					OnProgress: func(pr Progress) {
						if pr.Phase == "done" {
							applied = pr.Applied
						}
					},
				})
				require.NoError(b, err)
				require.Equal(b, events, applied)
				took += time.Since(start)
			}
			n := float64(events * b.N)
			b.ReportMetric(n/took.Seconds(), "ev/s")
			b.ReportMetric(float64((testsupport.ProcessCPU(b)-self0).Microseconds())/n, "cpu-µs/ev")
			b.ReportMetric(float64((testsupport.RedisCPU(b, e.deps.Redis)-redis0).Microseconds())/n, "redis-cpu-µs/ev")
			logCommandStats(b, e.deps.Redis, n)
		})
	}
}

// logCommandStats logs redis-server's CPU per event by command (INFO
// commandstats since the benchmark reset them), the largest shares first.
func logCommandStats(b *testing.B, rdb redis.UniversalClient, events float64) {
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	require.NoError(b, err)
	type stat struct {
		cmd   string
		calls int64
		usec  float64
	}
	var stats []stat
	for line := range strings.SplitSeq(info, "\r\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":")
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		st := stat{cmd: name}
		for kv := range strings.SplitSeq(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "calls":
				st.calls, _ = strconv.ParseInt(v, 10, 64)
			case "usec":
				st.usec, _ = strconv.ParseFloat(v, 64)
			}
		}
		stats = append(stats, st)
	}
	slices.SortFunc(stats, func(a, b stat) int { return cmp.Compare(b.usec, a.usec) })
	var out strings.Builder
	for _, st := range stats[:min(8, len(stats))] {
		fmt.Fprintf(&out, " %s %.2fµs/ev (%d calls);", st.cmd, st.usec/events, st.calls)
	}
	b.Logf("redis commandstats:%s", out.String())
}
