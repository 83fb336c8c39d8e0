package webhooks_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/webhooks"
	"github.com/kilnhq/kiln/webhooks/endpoint"
	"github.com/kilnhq/kiln/webhooks/signature"
)

// TestConcurrentRotationsKeepEverySecret: rotations at once each leave
// their secret signing (the last one current, the others for the
// overlap); a plain read-then-write lost all but one.
func TestConcurrentRotationsKeepEverySecret(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ep := h.createEndpoint("https://a.example/hook")
	const n = 8
	secrets, errs := make([]string, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp, err := http.Post(h.url+"/webhook-endpoints/"+ep.ID+"/rotate-secret", "application/json", nil)
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			var out struct {
				Secret string `json:"secret"`
			}
			errs[i] = json.NewDecoder(resp.Body).Decode(&out)
			secrets[i] = out.Secret
		})
	}
	wg.Wait()
	e, err := endpoint.NewStore(h.db).Get(t.Context(), ep.ID)
	require.NoError(t, err)
	signing := e.SigningSecrets(time.Now())
	for i, s := range append(secrets, ep.Secret) {
		if i < n {
			require.NoError(t, errs[i])
		}
		k, err := signature.ParseSecret(s)
		require.NoError(t, err)
		require.True(t, containsKey(signing, k), "secret %d still signs", i)
	}
	require.Len(t, signing, n+1)
}

func containsKey(ks []signature.Secret, k signature.Secret) bool {
	return slices.ContainsFunc(ks, func(x signature.Secret) bool { return bytes.Equal(x, k) })
}

// TestNewURLRestartsTheFailingClock: the failures of an endpoint's old URL
// do not count toward disabling it once its URL is fixed.
func TestNewURLRestartsTheFailingClock(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *webhooks.Config) { c.Schedule = []time.Duration{time.Hour} })
	bad := newReceiver(t)
	bad.respond = func(int, received) int { return http.StatusInternalServerError }
	ep := h.createEndpoint(bad.URL)
	h.publish("order.created")
	var v struct {
		FailingSince int64 `json:"failingSince"`
	}
	require.Eventually(t, func() bool {
		return h.api(http.MethodGet, "/webhook-endpoints/"+ep.ID, nil, &v) == http.StatusOK && v.FailingSince != 0
	}, wait, tick)
	good := newReceiver(t)
	require.Equal(t, http.StatusOK, h.api(http.MethodPatch, "/webhook-endpoints/"+ep.ID, map[string]any{"url": good.URL}, nil))
	var after map[string]any
	require.Equal(t, http.StatusOK, h.api(http.MethodGet, "/webhook-endpoints/"+ep.ID, nil, &after))
	require.Equal(t, good.URL, after["url"])
	require.NotContains(t, after, "failingSince", "a new URL starts with a clean record (0 is omitted)")
}

// TestDeliveryLogRetention: a finished delivery leaves the log once
// WEBHOOKS_LOG_RETENTION has passed since its last change.
func TestDeliveryLogRetention(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *webhooks.Config) { c.LogRetention = 3 * time.Second })
	rc := newReceiver(t)
	ep := h.createEndpoint(rc.URL)
	rc.trust(ep.Secret)
	h.publish("order.created")
	require.Eventually(t, func() bool { return len(rc.accepted()) == 1 }, wait, tick)
	id := rc.all()[0].ID
	var d map[string]any
	require.Eventually(t, func() bool {
		clear(d)
		return h.api(http.MethodGet, "/webhook-deliveries/"+id, nil, &d) == http.StatusOK && d["status"] == "succeeded"
	}, wait, tick, "logged")
	require.Eventually(t, func() bool {
		return h.api(http.MethodGet, "/webhook-deliveries/"+id, nil, nil) == http.StatusNotFound
	}, wait, tick, "pruned")
}
