package testsupport

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// Logger returns a structured logger for services under test. Records at
// WARN and above are written to t.Log (so they show up next to the failing
// test, and only with -v or on failure); lower levels are discarded.
//
// Records emitted after the test's cleanup has started are dropped, so a
// goroutine that outlives its test cannot make t.Log panic.
func Logger(t testing.TB) *slog.Logger {
	return LoggerLevel(t, slog.LevelWarn)
}

// LoggerLevel is like [Logger] but with a custom minimum level.
func LoggerLevel(t testing.TB, level slog.Leveler) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: level,
		// t.Log output carries no timestamps either; keep lines short.
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// DiscardLogger returns a logger that drops every record.
func DiscardLogger() *slog.Logger {
	return slog.New(slog.DiscardHandler)
}

// testWriter forwards whole log lines to t.Log until it is closed.
type testWriter struct {
	mu     sync.Mutex
	t      testing.TB
	closed bool
}

// Write implements [io.Writer]. slog's text handler calls it once per record.
func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()

	if !w.closed {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// close stops forwarding; it runs as a t.Cleanup function.
func (w *testWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()

	w.closed = true
}
