package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kilnhq/kiln/app/standalone/standalonetest"
	"github.com/kilnhq/kiln/readmodel"
	kilnv1 "github.com/kilnhq/kiln/realtime/gen/kiln/v1"
)

// seen collects the events one read path delivered, by id: the value of
// their schemaVersion (0 when absent) and whether it was present.
type seen struct {
	mu sync.Mutex
	by map[string]*int // nil: no schemaVersion
}

func newSeen() *seen { return &seen{by: map[string]*int{}} }

func (s *seen) add(id string, version *int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.by[id] = version
}

func (s *seen) get(id string) (version *int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	version, ok = s.by[id]
	return version, ok
}

// versionOf reads schemaVersion from a decoded event: nil when absent.
func versionOf(ev map[string]any) *int {
	v, ok := ev["schemaVersion"].(float64)
	if !ok {
		return nil
	}
	n := int(v)
	return &n
}

// Issue 24 item 3: each stored event says which schema version validated
// it (schemaVersion; absent for a type with no schema) on every read path
// (GET /events from the cache and MongoDB, GET /events/{id}, /stream, gRPC
// Subscribe, outbound webhooks), and `kiln replay` leaves it unchanged.
func TestSchemaVersionOnEveryReadPath(t *testing.T) {
	t.Parallel()
	in := standalonetest.Start(t, t.TempDir(), "KILN_ADMIN_KEYS", "adm-1", "WEBHOOKS_ALLOW_NETWORKS", "127.0.0.0/8",
		"PROJECTOR_CHECK_INTERVAL", "100ms")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	admin := []string{"--url", in.Base, "--admin-key", "adm-1"}

	// signup.completed gets two versions at runtime; page_view is an
	// embedded schema (version 1); plain.click has none.
	tests := []schemaVersionCase{
		{"registered at runtime, version 2", "sv-signup", "signup.completed", `{"plan":5}`, 2},
		{"embedded schema, version 1", "sv-page", "page_view", `{"path":"/"}`, 1},
		{"no schema", "sv-plain", "plain.click", `{"x":1}`, 0},
	}

	// Outbound webhooks: an endpoint for the three types.
	hooks := newSeen()
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Data map[string]any `json:"data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err == nil {
			id, _ := body.Data["id"].(string)
			hooks.add(id, versionOf(body.Data))
		}
	}))
	t.Cleanup(rc.Close)
	status, out := call(t, http.MethodPost, in.Base+"/webhook-endpoints", "adm-1",
		`{"url":"`+rc.URL+`","filters":["signup.*","page_view","plain.*"]}`)
	require.Equal(t, http.StatusCreated, status, out)

	// /stream and gRPC Subscribe, from the stream's start.
	sse := newSeen()
	go readStream(ctx, in.Base+"/stream?since=0", sse)
	subs := newSeen()
	cc, err := grpc.NewClient(in.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { cc.Close() })
	sub, err := kilnv1.NewEventServiceClient(cc).Subscribe(ctx, &kilnv1.SubscribeRequest{Resume: true})
	require.NoError(t, err)
	go func() {
		for {
			ev, err := sub.Recv()
			if err != nil {
				return
			}
			var v *int
			if ev.SchemaVersion != nil {
				n := int(ev.GetSchemaVersion())
				v = &n
			}
			subs.add(ev.GetId(), v)
		}
	}()

	// Version 1 takes plan as a string; version 2 also as a number.
	dir := t.TempDir()
	for i, doc := range []string{
		`{"allOf":[{"$ref":"envelope.json"}],"properties":{"metadata":{"type":"object","properties":{"plan":{"type":"string"}}}}}`,
		`{"allOf":[{"$ref":"envelope.json"}],"properties":{"metadata":{"type":"object","properties":{"plan":{"type":["string","number"]}}}}}`,
	} {
		p := filepath.Join(dir, "signup.completed.json")
		require.NoError(t, os.WriteFile(p, []byte(doc), 0o600))
		out, err := kiln(ctx, in, append([]string{"schemas", "push", p}, admin...)...)
		require.NoError(t, err, out)
		require.Contains(t, out, `"version": `+strconv.Itoa(i+1), out)
	}

	// The first event passes version 2 only: ingest answers 400 until it
	// validates with version 2, and stores nothing meanwhile.
	now := time.Now().UnixMilli()
	for _, tt := range tests {
		body := fmt.Sprintf(`{"id":%q,"eventType":%q,"userId":"u1","timestamp":%d,"metadata":%s}`, tt.id, tt.eventType, now, tt.metadata)
		require.Eventually(t, func() bool {
			status, _ := call(t, http.MethodPost, in.Base+"/events", "", body)
			return status == http.StatusAccepted
		}, 2*time.Minute, 50*time.Millisecond, "POST %s", tt.id)
	}

	// readPaths checks GET /events (cache or MongoDB, as the gateway
	// picks) and GET /events/{id} (MongoDB).
	readPaths := func(t *testing.T, tt schemaVersionCase) {
		var one string
		require.Eventually(t, func() bool {
			var status int
			status, one = call(t, http.MethodGet, in.Base+"/events/"+url.PathEscape(tt.id), "", "")
			return status == http.StatusOK
		}, 2*time.Minute, 50*time.Millisecond, "GET /events/%s", tt.id)
		var ev map[string]any
		require.NoError(t, json.Unmarshal([]byte(one), &ev), one)
		require.True(t, tt.want(versionOf(ev)), "GET /events/{id} (MongoDB): %s", one)
		var page []map[string]any
		require.Eventually(t, func() bool {
			status, out := call(t, http.MethodGet, in.Base+"/events?type="+url.QueryEscape(tt.eventType), "", "")
			return status == http.StatusOK && json.Unmarshal([]byte(out), &page) == nil && len(page) == 1
		}, 2*time.Minute, 50*time.Millisecond, "GET /events?type=%s", tt.eventType)
		require.Equal(t, tt.id, page[0]["id"])
		require.True(t, tt.want(versionOf(page[0])), "GET /events: %v", page[0])
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			readPaths(t, tt)
			for name, s := range map[string]*seen{"/stream": sse, "gRPC Subscribe": subs, "webhook": hooks} {
				require.Eventually(t, func() bool {
					_, ok := s.get(tt.id)
					return ok
				}, 2*time.Minute, 50*time.Millisecond, "%s delivers %s", name, tt.id)
				got, _ := s.get(tt.id)
				require.True(t, tt.want(got), "%s: %s has schemaVersion %v, want %d (0: none)", name, tt.id, got, tt.version)
			}
		})
	}

	// A replay rebuilds the read models from the stream: the versions stay.
	out, err = kiln(ctx, in, "replay", "all", "--yes", "--grace", "500ms")
	require.NoError(t, err, out)
	require.Contains(t, out, "replay complete")
	client, err := mongo.Connect(options.Client().ApplyURI(in.MongoURI))
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	gen, err := readmodel.HistoryGeneration(ctx, client.Database("kiln"))
	require.NoError(t, err)
	require.EqualValues(t, 1, gen, "the replay switched to a rebuilt history")
	for _, tt := range tests {
		t.Run("after replay/"+tt.name, func(t *testing.T) { readPaths(t, tt) })
	}
}

// call sends one request (with key as a bearer token when set) and returns
// the status and body.
func call(t *testing.T, method, u, key, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// readStream records the events of an SSE stream until ctx ends.
func readStream(ctx context.Context, u string, into *seen) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev map[string]any
		if json.Unmarshal([]byte(data), &ev) != nil {
			continue
		}
		if id, ok := ev["id"].(string); ok {
			into.add(id, versionOf(ev))
		}
	}
}

// schemaVersionCase is one event of TestSchemaVersionOnEveryReadPath.
type schemaVersionCase struct {
	name, id, eventType, metadata string
	version                       int // 0: no schemaVersion
}

// want reports whether got (nil: absent) is the case's schemaVersion.
func (c schemaVersionCase) want(got *int) bool {
	if c.version == 0 {
		return got == nil
	}
	return got != nil && *got == c.version
}
