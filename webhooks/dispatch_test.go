package webhooks_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/webhooks"
)

const wait, tick = 60 * time.Second, 20 * time.Millisecond

func TestEveryMatchingEventOncePerEndpointAcrossRestartAndRetry(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	orders, all := newReceiver(t), newReceiver(t)
	// The catch-all receiver fails the first request of every other
	// webhook: those are delivered again, and must still count once.
	flip := 0
	all.respond = func(n int, _ received) int {
		if n == 0 {
			if flip++; flip%2 == 0 {
				return http.StatusInternalServerError
			}
		}
		return http.StatusOK
	}
	epOrders := h.createEndpoint(orders.URL, "order.*")
	epAll := h.createEndpoint(all.URL)
	orders.trust(epOrders.Secret)
	all.trust(epAll.Secret)

	publish := func(n int) {
		for i := range n {
			if i%2 == 0 {
				h.publish("order.created")
			} else {
				h.publish("page_view")
			}
		}
	}
	publish(20)
	require.Eventually(t, func() bool { return len(orders.accepted()) == 10 && len(all.accepted()) == 20 }, wait, tick)

	h.stop() // a dispatcher restart, with events arriving while it is down
	publish(10)
	h.start()
	publish(10)
	require.Eventually(t, func() bool { return len(orders.accepted()) == 20 && len(all.accepted()) == 40 }, wait, tick)

	for _, rc := range []*receiver{orders, all} {
		for id, n := range rc.accepted() {
			require.Equal(t, 1, n, "webhook %s accepted once", id)
		}
		for _, g := range rc.all() {
			require.True(t, g.Valid, "signature of %s verifies", g.ID)
		}
	}
	for _, g := range orders.all() {
		require.Equal(t, "order.created", g.Type, "the filter holds")
	}
	require.Greater(t, len(all.all()), 40, "some were retried")
}

func TestFourthAttemptArrivesOnSchedule(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	rc := newReceiver(t)
	rc.respond = func(n int, _ received) int {
		if n < 3 {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	}
	ep := h.createEndpoint(rc.URL)
	rc.trust(ep.Secret)
	h.publish("order.created")
	require.Eventually(t, func() bool { return len(rc.all()) == 4 }, wait, tick)
	got := rc.all()
	for i, d := range h.cfg.Schedule {
		require.GreaterOrEqual(t, got[i+1].At.Sub(got[i].At), d, "attempt %d waits for the schedule", i+2)
		require.Equal(t, got[0].ID, got[i+1].ID, "one webhook id for every attempt")
	}
	require.Eventually(t, func() bool {
		ds := h.deliveries(ep.ID, "succeeded")
		return len(ds) == 1 && ds[0].AttemptCount == 4
	}, wait, tick)
	d := h.deliveries(ep.ID, "")[0]
	require.Equal(t, 500, d.Attempts[0].Status)
	require.Contains(t, d.Attempts[0].Response, "from the receiver", "response excerpt logged")
	require.Equal(t, 204, d.Attempts[3].Status)
}

// TestRetryAfter: a 429's Retry-After sets the next attempt's time
// instead of the 100 ms schedule, up to WEBHOOKS_MAX_RETRY_AFTER: a 429
// asking for centuries waits the cap.
func TestRetryAfter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		retryAfter string
		maxWait    time.Duration // WEBHOOKS_MAX_RETRY_AFTER; 0 is the default
		wantGap    time.Duration
		why        string
	}{
		{"honoured", "2", 0, 2 * time.Second, "Retry-After, not the 100ms schedule"},
		{"capped", "9223372036", time.Second, time.Second, "the cap, not the 100ms schedule"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, func(c *webhooks.Config) {
				if tc.maxWait > 0 {
					c.MaxRetryAfter = tc.maxWait
				}
			})
			rc := newReceiver(t)
			rc.Server.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if len(rc.all()) == 0 {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				rc.serve(w, r)
			})
			rc.respond = func(n int, _ received) int {
				if n == 0 {
					return http.StatusTooManyRequests
				}
				return http.StatusOK
			}
			ep := h.createEndpoint(rc.URL)
			rc.trust(ep.Secret)
			h.publish("order.created")
			require.Eventually(t, func() bool { return len(rc.accepted()) == 1 }, wait, tick)
			got := rc.all()
			require.GreaterOrEqual(t, got[1].At.Sub(got[0].At), tc.wantGap, tc.why)
		})
	}
}

func TestDeadLetterThenRedriveDeliversOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	rc := newReceiver(t)
	healthy := false
	rc.respond = func(int, received) int {
		if healthy {
			return http.StatusOK
		}
		return http.StatusBadGateway
	}
	ep := h.createEndpoint(rc.URL)
	rc.trust(ep.Secret)
	since := time.Now().UTC().Format(time.RFC3339Nano)
	h.publish("order.created")
	h.publish("order.created")
	var dead []deliveryView
	require.Eventually(t, func() bool { dead = h.deliveries(ep.ID, "dead"); return len(dead) == 2 }, wait, tick)
	require.Equal(t, len(h.cfg.Schedule)+1, dead[0].AttemptCount)
	require.Contains(t, dead[0].Reason, "no success after 4 attempts")

	rc.mu.Lock()
	healthy = true
	rc.mu.Unlock()
	var out map[string]any
	require.Equal(t, http.StatusAccepted, h.api(http.MethodPost, "/webhook-deliveries/"+dead[0].ID+"/redrive", nil, &out))
	require.Eventually(t, func() bool { return rc.accepted()[dead[0].ID] == 1 }, wait, tick)
	require.Equal(t, http.StatusConflict, h.api(http.MethodPost, "/webhook-deliveries/"+dead[0].ID+"/redrive", nil, nil),
		"a delivered one is not redriven again")

	// Everything dead since T (the other one).
	require.Equal(t, http.StatusAccepted, h.api(http.MethodPost, "/webhook-deliveries/redrive?since="+since, nil, &out))
	require.EqualValues(t, 1, out["redriven"])
	require.Eventually(t, func() bool { return len(rc.accepted()) == 2 }, wait, tick)
	if !assert.Eventually(t, func() bool { return len(h.deliveries(ep.ID, "succeeded")) == 2 }, wait, tick) {
		for _, d := range h.deliveries(ep.ID, "") {
			t.Logf("delivery %s: %s, %d attempts, reason %q", d.ID, d.Status, d.AttemptCount, d.Reason)
		}
		t.FailNow()
	}
	for id, n := range rc.accepted() {
		require.Equal(t, 1, n, "%s delivered once", id)
	}
}

func TestGoneDisablesEndpoint(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	gone, other := newReceiver(t), newReceiver(t)
	gone.respond = func(int, received) int { return http.StatusGone }
	ep := h.createEndpoint(gone.URL, "order.created")
	sentinel := h.createEndpoint(other.URL, "page_view")
	gone.trust(ep.Secret)
	other.trust(sentinel.Secret)
	h.publish("order.created")
	var v endpointView
	require.Eventually(t, func() bool {
		h.api(http.MethodGet, "/webhook-endpoints/"+ep.ID, nil, &v)
		return v.Disabled
	}, wait, tick)
	require.Contains(t, v.DisabledReason, "410")
	var dead []deliveryView
	require.Eventually(t, func() bool { dead = h.deliveries(ep.ID, "dead"); return len(dead) == 1 }, wait, tick)
	require.Equal(t, 1, dead[0].AttemptCount, "no retry after 410")

	h.publish("order.created")
	h.publish("page_view")
	require.Eventually(t, func() bool { return len(other.accepted()) == 1 }, wait, tick)
	require.Len(t, gone.all(), 1, "a disabled endpoint gets nothing more")
}

func TestPrivateAddressRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *webhooks.Config) { c.AllowNetworks = nil })
	rc := newReceiver(t)
	ep := h.createEndpoint(rc.URL)
	h.publish("order.created")
	var ds []deliveryView
	require.Eventually(t, func() bool {
		ds = h.deliveries(ep.ID, "")
		return len(ds) == 1 && len(ds[0].Attempts) > 0
	}, wait, tick)
	msg := ds[0].Attempts[0].Error
	require.Contains(t, msg, "refused to connect to 127.0.0.1")
	require.Contains(t, msg, "loopback")
	require.Contains(t, msg, "WEBHOOKS_ALLOW_NETWORKS")
	require.Empty(t, rc.all())

	var test struct {
		OK      bool `json:"ok"`
		Attempt struct {
			Error string `json:"error"`
		} `json:"attempt"`
	}
	require.Equal(t, http.StatusOK, h.api(http.MethodPost, "/webhook-endpoints/"+ep.ID+"/test", nil, &test))
	require.False(t, test.OK)
	require.Contains(t, test.Attempt.Error, "loopback", "the test send goes through the guard too")
}

func TestSlowEndpointDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	release := make(chan struct{})
	slow := newReceiver(t)
	slow.Server.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		slow.serve(w, r)
	})
	t.Cleanup(func() { close(release) })
	fast := newReceiver(t)
	epSlow, epFast := h.createEndpoint(slow.URL), h.createEndpoint(fast.URL)
	slow.trust(epSlow.Secret)
	fast.trust(epFast.Secret)
	for range 40 {
		h.publish("order.created")
	}
	// 40 slow requests would take every one of the 16 workers; the
	// per-endpoint bound leaves the others to the fast endpoint.
	require.Eventually(t, func() bool { return len(fast.accepted()) == 40 }, wait, tick)
	require.Empty(t, slow.accepted())
}

func TestRotationSignsWithBothSecrets(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	oldOnly, newOnly := newReceiver(t), newReceiver(t)
	ep := h.createEndpoint(oldOnly.URL)
	oldOnly.trust(ep.Secret)
	var rotated struct {
		Secret                  string `json:"secret"`
		PreviousSecretExpiresAt int64  `json:"previousSecretExpiresAt"`
	}
	require.Equal(t, http.StatusOK, h.api(http.MethodPost, "/webhook-endpoints/"+ep.ID+"/rotate-secret", nil, &rotated))
	require.NotEqual(t, ep.Secret, rotated.Secret)
	require.InDelta(t, time.Now().Add(24*time.Hour).UnixMilli(), rotated.PreviousSecretExpiresAt, 60_000)
	newOnly.trust(rotated.Secret)

	var test struct {
		OK bool `json:"ok"`
	}
	require.Equal(t, http.StatusOK, h.api(http.MethodPost, "/webhook-endpoints/"+ep.ID+"/test", nil, &test))
	require.True(t, test.OK)
	require.Equal(t, http.StatusOK, h.api(http.MethodPatch, "/webhook-endpoints/"+ep.ID, map[string]any{"url": newOnly.URL}, nil))
	h.publish("order.created")
	require.Eventually(t, func() bool { return len(newOnly.accepted()) == 1 }, wait, tick)
	require.True(t, oldOnly.all()[0].Valid, "the old secret verifies the test event")
	require.Equal(t, "kiln.webhook.test", oldOnly.all()[0].Type)
	require.True(t, newOnly.all()[0].Valid, "the new secret verifies")
}

func TestAdminAPI(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *webhooks.Config) { c.AdminKeys = []string{"admin-1"} })
	require.Equal(t, http.StatusUnauthorized, h.api(http.MethodGet, "/webhook-endpoints", nil, nil))
	h.t = t
	do := func(method, path string, in, out any) int {
		req, _ := http.NewRequest(method, h.url+path, strings.NewReader(toJSON(t, in)))
		req.Header.Set("Authorization", "Bearer admin-1")
		req.Header.Set("Content-Type", "application/json")
		return decodeResp(t, req, out)
	}
	var p struct {
		Status int `json:"status"`
		Errors []struct {
			Field string `json:"field"`
		} `json:"errors"`
	}
	require.Equal(t, 400, do(http.MethodPost, "/webhook-endpoints", map[string]any{"url": "ftp://x", "filters": []string{"a..b"}}, &p))
	require.Len(t, p.Errors, 2)
	require.Equal(t, "url", p.Errors[0].Field)
	require.Equal(t, "filters[0]", p.Errors[1].Field)
	require.Equal(t, 400, do(http.MethodPost, "/webhook-endpoints", map[string]any{"url": "https://a.example", "colour": 1}, &p))
	require.Equal(t, "colour", p.Errors[0].Field)

	var ep endpointView
	require.Equal(t, 201, do(http.MethodPost, "/webhook-endpoints", map[string]any{"url": "https://a.example/hook", "filters": []string{"order.>", "*.failed"}}, &ep))
	require.NotEmpty(t, ep.Secret)
	var got endpointView
	require.Equal(t, 200, do(http.MethodGet, "/webhook-endpoints/"+ep.ID, nil, &got))
	require.Empty(t, got.Secret, "the secret is shown once")
	require.Equal(t, []string{"order.>", "*.failed"}, got.Filters)
	require.Equal(t, 200, do(http.MethodPost, "/webhook-endpoints/"+ep.ID+"/disable", nil, &got))
	require.True(t, got.Disabled)
	require.Equal(t, 200, do(http.MethodPost, "/webhook-endpoints/"+ep.ID+"/enable", nil, &got))
	require.False(t, got.Disabled)
	require.Equal(t, 200, do(http.MethodPatch, "/webhook-endpoints/"+ep.ID, map[string]any{"filters": []string{}}, &got))
	require.Empty(t, got.Filters)
	var list struct {
		Endpoints []endpointView `json:"endpoints"`
	}
	require.Equal(t, 200, do(http.MethodGet, "/webhook-endpoints", nil, &list))
	require.Len(t, list.Endpoints, 1)
	require.Equal(t, 204, do(http.MethodDelete, "/webhook-endpoints/"+ep.ID, nil, nil))
	require.Equal(t, 404, do(http.MethodGet, "/webhook-endpoints/"+ep.ID, nil, &p))
	require.Equal(t, 400, do(http.MethodPost, "/webhook-deliveries/redrive", nil, &p), "since is required")
}
