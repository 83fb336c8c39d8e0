package faults

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/readmodel"
)

// receiver is an HTTP endpoint that answers 200 and counts the requests by
// a key read from each body (an alert, an event id).
type receiver struct {
	key func(body []byte) string

	mu       sync.Mutex
	seen     map[string]int
	requests int
	*httptest.Server
}

func startReceiver(t *testing.T, key func([]byte) string) *receiver {
	r := &receiver{key: key, seen: map[string]int{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		k := r.key(body)
		r.mu.Lock()
		r.requests++
		r.seen[k]++
		r.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) counts() (map[string]int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.seen))
	for k, v := range r.seen {
		out[k] = v
	}
	return out, r.requests
}

// slackAlert is an alert's Slack message as "<event id> <alert id>": the
// text is the rule's message (the event id), the context block names the
// alert.
var slackAlert = regexp.MustCompile("alert `([^`]+)`")

func startSlackReceiver(t *testing.T) *receiver {
	return startReceiver(t, func(body []byte) string {
		var msg struct {
			Text string `json:"text"`
		}
		_ = json.Unmarshal(body, &msg)
		alert := ""
		if m := slackAlert.FindSubmatch(body); m != nil {
			alert = string(m[1])
		}
		return msg.Text + " " + alert
	})
}

// startHookReceiver is a webhook endpoint: the key is the event's id.
func startHookReceiver(t *testing.T) *receiver {
	return startReceiver(t, func(body []byte) string {
		var msg struct {
			Data struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &msg)
		return msg.Data.ID
	})
}

// createEndpoint registers the receiver as a webhook endpoint for
// hookType at the admin API served at base (the webhooks role, or the
// standalone).
func createEndpoint(t *testing.T, base string, hooks *receiver) {
	t.Helper()
	body := fmt.Sprintf(`{"url":%q,"filters":[%q]}`, hooks.URL, hookType)
	resp, err := http.Post(base+"/webhook-endpoints", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	answer, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", answer)
}

// probe posts an event of each checked type (ids probe-N-…) until one of
// each has come out of the notifier and the webhooks: their consumers
// exist and the endpoint is loaded, so every later event counts. It
// returns the probes' workload (their acked ids are read models' too).
func probe(t *testing.T, base string, slack, hooks *receiver) *workload {
	t.Helper()
	w := startWorkload(t, base, 0, 0)
	n := 0
	require.Eventually(t, func() bool {
		n++
		now := time.Now().UnixMilli()
		w.post(fmt.Sprintf("probe-%d-alert", n), alertType, now)
		w.post(fmt.Sprintf("probe-%d-hook", n), hookType, now)
		alerts, _ := slack.counts()
		delivered, _ := hooks.counts()
		return anyPrefix(alerts, "probe-") && anyPrefix(delivered, "probe-")
	}, 2*time.Minute, 500*time.Millisecond, "no probe came out of the notifier and the webhooks")
	return w
}

func anyPrefix(m map[string]int, prefix string) bool {
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// getJSON decodes the answer of GET url into v and returns the response's
// X-Next-Cursor.
func getJSON(url string, v any) (string, error) {
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return "", fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return resp.Header.Get("X-Next-Cursor"), json.NewDecoder(resp.Body).Decode(v)
}

// pages GETs base+path page after page (limit 1000, cursor) and hands
// each page's items to add.
func pages[T any](base, path string, add func(T)) error {
	cursor := ""
	for {
		u := base + path + "?limit=1000"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		var items []T
		next, err := getJSON(u, &items)
		if err != nil {
			return err
		}
		for _, it := range items {
			add(it)
		}
		if next == "" {
			return nil
		}
		cursor = next
	}
}

// settleAPI waits until the read API at base serves exactly the acked
// events — GET /metrics' all-time totals, in all and per type, and GET
// /events listing each acked id once and nothing else — and returns how
// many events it listed.
func settleAPI(t *testing.T, base string, acked map[string]string) int {
	t.Helper()
	byType := map[string]int64{}
	for _, typ := range acked {
		byType[typ]++
	}
	var why string
	var listed map[string]int
	ok := assertEventually(settleWithin, func() bool {
		var m readmodel.Metrics
		if _, err := getJSON(base+"/metrics", &m); err != nil {
			why = err.Error()
			return false
		}
		if m.Total != int64(len(acked)) {
			why = fmt.Sprintf("GET /metrics total %d, acked %d", m.Total, len(acked))
			return false
		}
		for typ, n := range byType {
			if m.Totals[typ] != n {
				why = fmt.Sprintf("GET /metrics totals[%s] %d, acked %d", typ, m.Totals[typ], n)
				return false
			}
		}
		listed = map[string]int{}
		err := pages(base, "/events", func(ev struct {
			ID string `json:"id"`
		}) {
			listed[ev.ID]++
		})
		if err != nil {
			why = err.Error()
			return false
		}
		why = fmt.Sprintf("GET /events listed %d ids, acked %d", len(listed), len(acked))
		return len(listed) == len(acked)
	})
	require.True(t, ok, "the read API at %s never served the acked events within %s: %s", base, settleWithin, why)
	for id, n := range listed {
		require.Contains(t, acked, id, "GET /events lists an event never acked")
		require.Equal(t, 1, n, "GET /events lists %s %d times", id, n)
	}
	return len(listed)
}

// deliveries are what the notifier and the webhooks sent.
type deliveries struct {
	alerts, alertsTwice                      int
	hookEvents, hookRequests, hookDuplicates int
}

// checkDeliveries waits until every acked event of hookType reached the
// webhook receiver, every acked event of alertType was alerted on Slack and
// every alert the read API at base lists is sent (after which none is sent
// again), then requires that no alert reached Slack twice. Webhooks are
// at least once: their duplicates are counted and logged, not failed.
func checkDeliveries(t *testing.T, base string, acked map[string]string, slack, hooks *receiver) deliveries {
	t.Helper()
	var why string
	require.Eventually(t, func() bool {
		delivered, _ := hooks.counts()
		alerted := alertedEvents(slack)
		for id, typ := range acked {
			if typ == hookType && delivered[id] == 0 {
				why = "webhook of " + id + " not delivered"
				return false
			}
			if typ == alertType && alerted[id] == 0 {
				why = "no alert for " + id + " on Slack"
				return false
			}
		}
		unsent, total := 0, 0
		err := pages(base, "/alerts", func(a struct {
			Status string `json:"status"`
		}) {
			total++
			if a.Status != string(readmodel.DeliverySent) {
				unsent++
			}
		})
		why = fmt.Sprintf("GET /alerts: %d of %d not sent (%v)", unsent, total, err)
		return err == nil && unsent == 0
	}, settleWithin, 250*time.Millisecond, "deliveries incomplete: %s", why)

	var d deliveries
	alerts, _ := slack.counts()
	for key, n := range alerts {
		d.alerts++
		if n > 1 {
			d.alertsTwice++
			t.Errorf("alert %q sent to Slack %d times", key, n)
		}
	}
	for id, n := range alertedEvents(slack) {
		if n > 1 {
			t.Errorf("event %s alerted %d times (distinct alert ids)", id, n)
		}
	}
	delivered, requests := hooks.counts()
	d.hookEvents, d.hookRequests = len(delivered), requests
	for _, n := range delivered {
		d.hookDuplicates += n - 1
	}
	t.Logf("webhooks: %d events, %d requests, %d duplicates (at least once; the receiver dedupes on webhook-id)",
		d.hookEvents, d.hookRequests, d.hookDuplicates)
	return d
}

// alertedEvents counts the distinct alerts Slack received per event id.
func alertedEvents(slack *receiver) map[string]int {
	alerts, _ := slack.counts()
	out := map[string]int{}
	for key := range alerts {
		id, _, _ := strings.Cut(key, " ")
		out[id]++
	}
	return out
}
