// Package progress shows a replay's progress: a progress bar with rate and
// ETA on a terminal, plain log lines otherwise.
package progress

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/kilnhq/kiln/projector/replay"
)

// Reporter aggregates the progress of concurrent projection replays.
type Reporter struct {
	mu      sync.Mutex
	w       io.Writer
	bar     *progressbar.ProgressBar // nil: plain lines
	start   time.Time
	lastLog time.Time
	every   time.Duration
	latest  map[string]replay.Progress
}

// New returns a reporter for total events; terminal selects the bar.
func New(w io.Writer, total int64, terminal bool) *Reporter {
	r := &Reporter{w: w, start: time.Now(), every: 2 * time.Second, latest: map[string]replay.Progress{}}
	if terminal {
		r.bar = progressbar.NewOptions64(max(total, 1),
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription("replaying"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("events"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionFullWidth(),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		)
	}
	return r
}

// Update records one projection's progress.
func (r *Reporter) Update(p replay.Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.latest[p.Projection] = p
	applied, lag := r.totals()
	if r.bar != nil {
		if int64(applied) > r.bar.GetMax64() {
			r.bar.ChangeMax64(int64(applied))
		}
		r.bar.Describe(fmt.Sprintf("%s · lag to head %d", r.phases(), lag))
		_ = r.bar.Set64(int64(applied))
		return
	}
	if time.Since(r.lastLog) >= r.every || p.Phase == "done" {
		r.lastLog = time.Now()
		r.logLine(p)
	}
}

func (r *Reporter) totals() (applied int, lag uint64) {
	for _, p := range r.latest {
		applied += p.Applied
		if p.Head > p.Position {
			lag += p.Head - p.Position
		}
	}
	return applied, lag
}

func (r *Reporter) phases() string {
	names := make([]string, 0, len(r.latest))
	for n := range r.latest {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + ": " + r.latest[n].Phase
	}
	return strings.Join(parts, ", ")
}

func (r *Reporter) logLine(p replay.Progress) {
	elapsed := time.Since(r.start).Seconds()
	rate := float64(p.Applied) / max(elapsed, 0.001)
	lag := uint64(0)
	if p.Head > p.Position {
		lag = p.Head - p.Position
	}
	eta := "-"
	if rate > 0 && lag > 0 {
		eta = time.Duration(float64(lag) / rate * float64(time.Second)).Round(time.Second).String()
	}
	fmt.Fprintf(r.w, "replay %s: %s, %d events applied, at seq %d of %d, %.0f events/s, ETA %s\n",
		p.Projection, p.Phase, p.Applied, p.Position, p.Head, rate, eta)
}

// Finish completes the bar.
func (r *Reporter) Finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bar != nil {
		_ = r.bar.Finish()
	}
}
