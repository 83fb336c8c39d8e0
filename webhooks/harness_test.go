package webhooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/kilnhq/kiln/httpserver"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
	"github.com/kilnhq/kiln/webhooks"
	"github.com/kilnhq/kiln/webhooks/delivery"
	"github.com/kilnhq/kiln/webhooks/signature"
)

// harness runs the webhooks service (admin API on a real listener and the
// dispatcher) on embedded NATS and FerretDB.
type harness struct {
	t    *testing.T
	js   jetstream.JetStream
	db   *mongo.Database
	cfg  webhooks.Config
	url  string
	stop func() // stops the running service
	seq  int
}

func testConfig() webhooks.Config {
	return webhooks.Config{
		AttemptTimeout: 5 * time.Second, Schedule: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond},
		DisableAfter: time.Hour, MaxRetryAfter: time.Hour, LogRetention: time.Hour, RotationOverlap: 24 * time.Hour, Concurrency: 16, PerEndpoint: 4,
		AllowNetworks: []string{"127.0.0.0/8", "::1"}, EndpointRefresh: 100 * time.Millisecond, StreamReplicas: 1,
	}
}

func newHarness(t *testing.T, mutate func(*webhooks.Config)) *harness {
	t.Helper()
	return newHarnessOn(t, testsupport.StartMongo(t).Database(t), mutate)
}

// newHarnessOn is newHarness on a database of the test's (a client with a
// command monitor, say).
func newHarnessOn(t *testing.T, db *mongo.Database, mutate func(*webhooks.Config)) *harness {
	t.Helper()
	ns := testsupport.StartNATS(t)
	js := ns.JetStream(t)
	_, err := schemas.EnsureStream(t.Context(), js, schemas.StreamOptions{Replicas: 1, DuplicateWindow: 2 * time.Minute})
	require.NoError(t, err)
	cfg := testConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	require.NoError(t, cfg.Validate())
	h := &harness{t: t, js: js, db: db, cfg: cfg}
	h.start()
	t.Cleanup(func() { h.stop() })
	return h
}

// start runs a service instance; stop ends it gracefully.
func (h *harness) start() {
	t := h.t
	log := testsupport.Logger(t)
	svc, err := webhooks.New(t.Context(), h.cfg, webhooks.Deps{JetStream: h.js, Mongo: h.db, Log: log})
	require.NoError(t, err)
	app := httpserver.NewApp(httpserver.AppConfig{BodyLimit: 1 << 20, Log: log})
	svc.Register(app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = httpserver.ServeListener(ctx, app, ln, 5*time.Second, log) })
	wg.Go(func() {
		if err := svc.Run(ctx); err != nil {
			t.Errorf("webhooks run: %v", err)
		}
	})
	h.url = "http://" + ln.Addr().String()
	var once sync.Once
	h.stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	// Run creates the fan-out consumer, which starts at new events: an
	// event published before it exists is never fanned out, so a test
	// must not publish before then (on a loaded machine Run came later
	// than a test's first publish, and its deliveries never came).
	require.Eventually(t, func() bool {
		_, err := h.js.Consumer(t.Context(), schemas.StreamName, delivery.FanoutDurable)
		return err == nil
	}, 3*time.Minute, 10*time.Millisecond, "the fan-out consumer was never created")
}

// publish stores an event in EVENTS as ingest does.
func (h *harness) publish(typ string) string {
	h.t.Helper()
	h.seq++
	id := fmt.Sprintf("%s-ev-%d", strings.ReplaceAll(h.t.Name(), "/", "-"), h.seq)
	body := fmt.Sprintf(`{"id":%q,"eventType":%q,"userId":"u","timestamp":1764619200000,"metadata":{"n":%d},"receivedAt":1764619200001}`, id, typ, h.seq)
	msg := &nats.Msg{Subject: schemas.Subject(typ), Data: []byte(body), Header: nats.Header{schemas.HeaderMsgID: {id}}}
	_, err := h.js.PublishMsg(h.t.Context(), msg)
	require.NoError(h.t, err)
	return id
}

// api calls the admin API and decodes the JSON answer into out (if not nil).
func (h *harness) api(method, path string, in, out any) int {
	h.t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		require.NoError(h.t, err)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.url+path, body)
	require.NoError(h.t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(h.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(h.t, err)
	if out != nil && len(b) > 0 {
		require.NoError(h.t, json.Unmarshal(b, out), "%s", b)
	}
	return resp.StatusCode
}

type endpointView struct {
	ID             string   `json:"id"`
	URL            string   `json:"url"`
	Filters        []string `json:"filters"`
	Secret         string   `json:"secret"`
	Disabled       bool     `json:"disabled"`
	DisabledReason string   `json:"disabledReason"`
}

func (h *harness) createEndpoint(url string, filters ...string) endpointView {
	h.t.Helper()
	var ep endpointView
	in := map[string]any{"url": url, "description": "test receiver"}
	if filters != nil {
		in["filters"] = filters
	}
	require.Equal(h.t, http.StatusCreated, h.api(http.MethodPost, "/webhook-endpoints", in, &ep))
	require.True(h.t, strings.HasPrefix(ep.Secret, "whsec_"))
	return ep
}

type deliveryView struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	AttemptCount int    `json:"attemptCount"`
	Attempts     []struct {
		Status   int    `json:"status"`
		Error    string `json:"error"`
		Response string `json:"response"`
	} `json:"attempts"`
	NextAttemptAt int64  `json:"nextAttemptAt"`
	Reason        string `json:"reason"`
}

func (h *harness) deliveries(endpointID, status string) []deliveryView {
	h.t.Helper()
	var out struct {
		Deliveries []deliveryView `json:"deliveries"`
	}
	require.Equal(h.t, http.StatusOK, h.api(http.MethodGet, "/webhook-endpoints/"+endpointID+"/deliveries?status="+status, nil, &out))
	return out.Deliveries
}

// receiver is a real HTTP receiver that verifies every request's
// signature and answers with what respond returns.
type receiver struct {
	*httptest.Server
	t       *testing.T
	mu      sync.Mutex
	secrets []signature.Secret
	got     []received
	respond func(n int, r received) int // n: requests so far for this webhook id
}

type received struct {
	ID, Type string
	At       time.Time
	Valid    bool
	Status   int
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{t: t, respond: func(int, received) int { return http.StatusOK }}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) trust(secret string) {
	s, err := signature.ParseSecret(secret)
	require.NoError(rc.t, err)
	rc.mu.Lock()
	rc.secrets = append(rc.secrets, s)
	rc.mu.Unlock()
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var payload struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(body, &payload)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	_, err := signature.Verify(rc.secrets, signature.Headers{ID: r.Header.Get("webhook-id"),
		Timestamp: r.Header.Get("webhook-timestamp"), Signature: r.Header.Get("webhook-signature")}, body, time.Now(), 5*time.Minute)
	got := received{ID: r.Header.Get("webhook-id"), Type: payload.Type, At: time.Now(), Valid: err == nil}
	n := 0
	for _, g := range rc.got {
		if g.ID == got.ID {
			n++
		}
	}
	got.Status = rc.respond(n, got)
	rc.got = append(rc.got, got)
	w.WriteHeader(got.Status)
	_, _ = w.Write([]byte(`{"answer":"from the receiver"}`))
}

func (rc *receiver) all() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// accepted counts the 2xx answers per webhook id.
func (rc *receiver) accepted() map[string]int {
	out := map[string]int{}
	for _, g := range rc.all() {
		if g.Status < 300 {
			out[g.ID]++
		}
	}
	return out
}
