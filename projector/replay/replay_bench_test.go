package replay

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkReplay rebuilds each projection from a stream of 50,000 events
// (the replay_rate scenario's default) and reports events/s; each
// iteration is one whole replay into a new generation.
//
//	go test -run '^$' -bench Replay -benchtime 3x -cpuprofile cpu.out ./projector/replay/
func BenchmarkReplay(b *testing.B) {
	const events = 50_000
	e := newEnv(b)
	e.publish(b, events)
	for _, p := range Projections() {
		b.Run(p, func(b *testing.B) {
			var took time.Duration
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
			b.ReportMetric(float64(events*b.N)/took.Seconds(), "ev/s")
		})
	}
}
