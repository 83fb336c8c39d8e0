package projector

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// repeatEvery is how often one repeated housekeeping warning is logged
// while its cause lasts (a store that is down fails every check).
const repeatEvery = 30 * time.Second

// limitedLog logs each distinct message at most once per repeatEvery,
// saying how many were left out in between. The zero value is ready.
type limitedLog struct {
	mu      sync.Mutex
	last    map[string]time.Time
	skipped map[string]int
}

// warn logs msg at WARN unless it was logged less than repeatEvery ago.
func (l *limitedLog) warn(log *slog.Logger, msg string, args ...any) {
	l.log(log, slog.LevelWarn, msg, args...)
}

// error logs msg at ERROR, limited like warn.
func (l *limitedLog) error(log *slog.Logger, msg string, args ...any) {
	l.log(log, slog.LevelError, msg, args...)
}

func (l *limitedLog) log(log *slog.Logger, level slog.Level, msg string, args ...any) {
	l.mu.Lock()
	if l.last == nil {
		l.last, l.skipped = map[string]time.Time{}, map[string]int{}
	}
	now := time.Now()
	if t, ok := l.last[msg]; ok && now.Sub(t) < repeatEvery {
		l.skipped[msg]++
		l.mu.Unlock()
		return
	}
	skipped := l.skipped[msg]
	l.last[msg], l.skipped[msg] = now, 0
	l.mu.Unlock()
	if skipped > 0 {
		args = append(args, "repeated", skipped)
	}
	log.Log(context.Background(), level, msg, args...)
}
