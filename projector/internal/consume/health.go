package consume

import (
	"sync"
	"time"
)

// outageLogEvery bounds how often a lasting store outage is logged.
const outageLogEvery = 30 * time.Second

// Health is one loop's view of its store, shared with readiness checks and
// status reports. The zero value is healthy and ready to use.
type Health struct {
	mu       sync.Mutex
	since    time.Time // start of the current outage; zero when healthy
	lastErr  string
	failures int64 // failed attempts in the current outage
	total    int64 // failed attempts since start
	logged   time.Time
}

// HealthState is a snapshot of a Health.
type HealthState struct {
	Stalled  bool
	Since    time.Time // when the store started failing
	LastErr  string    // the last store error (may name internal addresses)
	Failures int64     // failed attempts in the current outage
	Total    int64     // failed attempts since the process started
}

// State returns a snapshot.
func (h *Health) State() HealthState {
	h.mu.Lock()
	defer h.mu.Unlock()
	return HealthState{Stalled: !h.since.IsZero(), Since: h.since, LastErr: h.lastErr, Failures: h.failures, Total: h.total}
}

// down records a failed attempt; it returns whether the outage just began
// and whether it is time to log it again.
func (h *Health) down(err error, now time.Time) (began, log bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastErr = err.Error()
	h.failures++
	h.total++
	if h.since.IsZero() {
		h.since, h.logged = now, now
		return true, true
	}
	if now.Sub(h.logged) >= outageLogEvery {
		h.logged = now
		return false, true
	}
	return false, false
}

// up ends an outage; it returns its start (zero when there was none) and
// its failed attempts.
func (h *Health) up() (since time.Time, failures int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	since, failures = h.since, h.failures
	h.since, h.failures = time.Time{}, 0
	return since, failures
}

// storeDown records a store error: metrics always, logs rate-limited.
func (s Spec) storeDown(err error) {
	s.Observe.StoreError()
	began, log := s.Health.down(err, time.Now())
	if began {
		s.Observe.Stalled(true)
		s.Log.Warn("store error; retrying until it answers", "consumer", s.Durable,
			"dependency", s.Dependency, "err", err)
	} else if log {
		st := s.Health.State()
		s.Log.Warn("still waiting for the store", "consumer", s.Durable, "dependency", s.Dependency,
			"for", time.Since(st.Since).Round(time.Second), "attempts", st.Failures, "err", err)
	}
}

// storeUp ends an outage, if there was one.
func (s Spec) storeUp() {
	since, failures := s.Health.up()
	if since.IsZero() {
		return
	}
	s.Observe.Stalled(false)
	s.Log.Info("store answers again; resuming", "consumer", s.Durable, "dependency", s.Dependency,
		"after", time.Since(since).Round(time.Millisecond), "attempts", failures)
}
