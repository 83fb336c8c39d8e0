package eventpost

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestPostBatchRetrying(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"accepted":1,"duplicates":0,"rejected":0,"failed":0,"results":[]}`))
	}))
	t.Cleanup(srv.Close)
	c, err := New(Options{BaseURL: srv.URL, MaxConns: 1, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	retried := 0
	if err := c.PostBatchRetrying(t.Context(), []byte(`[{}]`), 1, 3, func() { retried++ }); err != nil {
		t.Fatalf("third try should store the batch: %v", err)
	}
	if calls.Load() != 3 || retried != 2 {
		t.Errorf("%d posts, %d retries; want 3 and 2", calls.Load(), retried)
	}

	calls.Store(0)
	if err := c.PostBatchRetrying(t.Context(), []byte(`[{}]`), 1, 2, nil); err == nil {
		t.Error("two failed tries must give up with the error")
	}
	if calls.Load() != 2 {
		t.Errorf("%d posts; want 2", calls.Load())
	}

	calls.Store(0)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.PostBatchRetrying(ctx, []byte(`[{}]`), 1, 100, nil); err == nil || calls.Load() != 1 {
		t.Errorf("a cancelled context stops after the first try: %d posts, err %v", calls.Load(), err)
	}
}
