// Package notifiereval runs the notifier's rule-evaluation benchmark
// (BenchmarkEvaluate in notifier/internal/evaluate) with go test -bench and
// reads its events/s: with 100 rules, and with none as the baseline. The
// benchmark stays a test of the notifier's module, so nothing in the
// notifier is exported for the load tool; the go toolchain and Kiln's source
// tree (the working directory, as bench.sh runs it) are needed.
package notifiereval

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Package is the benchmark's package, Rules the size of its rule set.
const (
	Package = "github.com/kilnhq/kiln/notifier/internal/evaluate"
	Rules   = 100
)

// rounds of the baseline and the measured run: one go test each, as go
// test -count would run all of one sub-benchmark's rounds before the other's,
// and alternating lets drift on a noisy machine hit both alike.
const rounds = 4

// Result is the mean over the rounds.
type Result struct {
	EventsPerS         float64
	BaselineEventsPerS float64
	DecisionsPerEvent  float64
}

// Ratio is EventsPerS over BaselineEventsPerS.
func (r Result) Ratio() float64 {
	if r.BaselineEventsPerS <= 0 {
		return 0
	}
	return r.EventsPerS / r.BaselineEventsPerS
}

// Run measures for about d in all (at least 400ms).
func Run(ctx context.Context, d time.Duration) (Result, error) {
	per := max(d, 400*time.Millisecond) / (2 * rounds)
	var all bytes.Buffer
	for range rounds {
		cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^BenchmarkEvaluate$",
			"-benchtime", per.String(), Package)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return Result{}, fmt.Errorf("go test -bench BenchmarkEvaluate %s (run from Kiln's source tree): %w\n%s",
				Package, err, bytes.TrimSpace(out))
		}
		all.Write(out)
	}
	return Parse(&all)
}

// Parse reads go test -bench output: the events/s and decisions/event of
// the BenchmarkEvaluate/rules=N lines, averaged per N.
func Parse(r io.Reader) (Result, error) {
	type sums struct{ rate, decisions, n float64 }
	got := map[string]*sums{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || !strings.HasPrefix(f[0], "BenchmarkEvaluate/rules=") {
			continue
		}
		name := strings.TrimPrefix(f[0], "BenchmarkEvaluate/")
		if i := strings.LastIndexByte(name, '-'); i > 0 { // the GOMAXPROCS suffix
			name = name[:i]
		}
		s := got[name]
		if s == nil {
			s = &sums{}
			got[name] = s
		}
		s.n++
		for i := 2; i+1 < len(f); i += 2 { // value unit pairs after the iteration count
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return Result{}, fmt.Errorf("benchmark line %q: %w", sc.Text(), err)
			}
			switch f[i+1] {
			case "events/s":
				s.rate += v
			case "decisions/event":
				s.decisions += v
			}
		}
	}
	if err := sc.Err(); err != nil {
		return Result{}, err
	}
	with, base := got[fmt.Sprintf("rules=%d", Rules)], got["rules=0"]
	if with == nil || base == nil {
		return Result{}, fmt.Errorf("no BenchmarkEvaluate/rules=%d and rules=0 lines in go test's output", Rules)
	}
	return Result{EventsPerS: with.rate / with.n, BaselineEventsPerS: base.rate / base.n,
		DecisionsPerEvent: with.decisions / with.n}, nil
}
