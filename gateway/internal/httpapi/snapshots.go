package httpapi

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/kilnhq/kiln/readmodel"
)

// Snapshots shares one rendered GET /metrics snapshot between the requests
// of a short period (MaxAge): a snapshot costs 122 Redis reads and their
// decoding, and a dashboard or poller asks many times a second. The
// payload's "now" (the window's end) and "asOfSeq" say how old it is.
// Concurrent requests for an expired snapshot wait for one refresh.
type Snapshots struct {
	Counters *readmodel.Counters
	Now      func() time.Time
	MaxAge   time.Duration

	refresh sync.Mutex // held by the one request refreshing
	mu      sync.RWMutex
	body    []byte
	at      time.Time
}

// Get returns the current snapshot's JSON, taking a new one when the last
// is MaxAge old.
func (s *Snapshots) Get(ctx context.Context) ([]byte, error) {
	if b, ok := s.fresh(); ok {
		return b, nil
	}
	s.refresh.Lock()
	defer s.refresh.Unlock()
	if b, ok := s.fresh(); ok {
		return b, nil // refreshed while this request waited
	}
	now := s.Now()
	m, err := s.Counters.Snapshot(ctx, now)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.body, s.at = b, now
	s.mu.Unlock()
	return b, nil
}

func (s *Snapshots) fresh() ([]byte, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.body == nil {
		return nil, false
	}
	age := s.Now().Sub(s.at)
	return s.body, age >= 0 && age < s.MaxAge
}
