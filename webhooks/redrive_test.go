package webhooks_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/kilnhq/kiln/testsupport"
)

// replySizes records the largest MongoDB reply while armed.
type replySizes struct {
	mu    sync.Mutex
	armed bool
	max   int
}

func (r *replySizes) succeeded(_ context.Context, e *event.CommandSucceededEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.armed && len(e.Reply) > r.max {
		r.max = len(e.Reply)
	}
}

func (r *replySizes) arm(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.armed = on
}

func (r *replySizes) largest() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.max
}

// TestRedriveAllLoadsOneDeliveryAtATime: redriving every dead delivery
// (issue 21 item 9) reads their ids, then each delivery with its body, one
// at a time: no reply from MongoDB holds more than one body. It read every
// dead delivery with its body in one query before (20 bodies of 100 KB: one
// reply of 2 MB), so a backlog of dead deliveries was held in memory at once.
func TestRedriveAllLoadsOneDeliveryAtATime(t *testing.T) {
	t.Parallel()
	sizes := &replySizes{}
	m := testsupport.StartMongo(t)
	client, err := mongo.Connect(options.Client().ApplyURI(m.URI()).SetMonitor(&event.CommandMonitor{Succeeded: sizes.succeeded}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	h := newHarnessOn(t, client.Database(testsupport.UniqueName(t)), nil)
	rc := newReceiver(t)
	var mu sync.Mutex
	healthy := false
	rc.respond = func(int, received) int {
		mu.Lock()
		defer mu.Unlock()
		if healthy {
			return http.StatusOK
		}
		return http.StatusBadGateway
	}
	ep := h.createEndpoint(rc.URL)
	rc.trust(ep.Secret)
	const n, bodyBytes = 20, 100 << 10
	pad := strings.Repeat("p", bodyBytes)
	since := time.Now().UTC().Format(time.RFC3339Nano)
	for range n {
		msg := h.event("order.created", fmt.Sprintf(`"pad":%q`, pad))
		_, err := h.js.PublishMsg(t.Context(), msg)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return len(h.deliveries(ep.ID, "dead")) == n }, 5*time.Minute, 100*time.Millisecond)

	mu.Lock()
	healthy = true
	mu.Unlock()
	sizes.arm(true)
	var out map[string]any
	require.Equal(t, http.StatusAccepted, h.api(http.MethodPost, "/webhook-deliveries/redrive?since="+since, nil, &out))
	sizes.arm(false)
	require.EqualValues(t, n, out["redriven"])
	require.Less(t, sizes.largest(), 2*bodyBytes, "the largest MongoDB reply while redriving (bytes)")
	t.Logf("largest MongoDB reply while redriving %d deliveries of %d KB: %d KB", n, bodyBytes>>10, sizes.largest()>>10)

	require.Eventually(t, func() bool { return len(rc.accepted()) == n }, 5*time.Minute, 100*time.Millisecond)
	for id, c := range rc.accepted() {
		require.Equal(t, 1, c, "%s delivered once", id)
	}
}
