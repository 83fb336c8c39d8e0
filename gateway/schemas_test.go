package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/gateway"
	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// schemaGateway is a gateway with JetStream (so the schema registry is on)
// over a real FerretDB, redis-server and nats-server.
func schemaGateway(t *testing.T, mutate func(*gateway.Config)) (string, *readmodel.History) {
	t.Helper()
	cfg, err := gateway.LoadConfig(map[string]string{})
	require.NoError(t, err)
	if mutate != nil {
		mutate(&cfg)
	}
	db := testsupport.StartMongo(t).Database(t)
	rdb := testsupport.StartRedis(t).Client(t)
	js := testsupport.StartNATS(t).JetStream(t)
	svc, err := gateway.New(cfg, gateway.Deps{Mongo: db, Redis: rdb, JetStream: js, Log: testsupport.Logger(t)})
	require.NoError(t, err)
	history := readmodel.NewHistory(db, readmodel.DefaultCollections())
	require.NoError(t, history.EnsureIndexes(context.Background()))
	return serve(t, svc), history
}

func call(t *testing.T, method, url, key, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const signupV1 = `{"$schema":"https://json-schema.org/draft/2020-12/schema","allOf":[{"$ref":"envelope.json"}],
 "properties":{"metadata":{"type":"object","properties":{"plan":{"type":"string"}}}}}`

func TestSchemaRegistryAPI(t *testing.T) {
	url, history := schemaGateway(t, nil)

	// The embedded schemas are version 1 of their types.
	status, body := call(t, http.MethodGet, url+"/schemas", "", "")
	require.Equal(t, http.StatusOK, status, body)
	var list []struct {
		Type          string `json:"type"`
		Latest        int    `json:"latest"`
		Compatibility string `json:"compatibility"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &list))
	require.NotEmpty(t, list)
	for _, e := range list {
		require.Equal(t, 1, e.Latest, e.Type)
		require.Equal(t, "BACKWARD", e.Compatibility)
	}

	status, body = call(t, http.MethodPost, url+"/schemas/signup.completed", "", signupV1)
	require.Equal(t, http.StatusCreated, status, body)

	// Stored events: one without a plan.
	_, err := history.Apply(context.Background(), []schemas.Event{
		{ID: "with-plan", EventType: "signup.completed", UserID: "u", Timestamp: 1_700_000_000_000, ReceivedAt: 1, Seq: 1, Metadata: json.RawMessage(`{"plan":"pro"}`)},
		{ID: "no-plan", EventType: "signup.completed", UserID: "u", Timestamp: 1_700_000_001_000, ReceivedAt: 2, Seq: 2, Metadata: json.RawMessage(`{}`)},
	})
	require.NoError(t, err)
	strict := strings.Replace(signupV1, `"type":"object",`, `"type":"object","required":["plan"],`, 1)

	cases := []struct {
		name, query string
		status      int
		contains    []string
	}{
		{"refused with the rule and the stored event named", "", http.StatusConflict,
			[]string{`problems/schema-incompatible"`, `"required-added"`, `"no-plan"`, `"metadata.plan":1`}},
		{"dry run shows the same", "?dryRun=true", http.StatusConflict, []string{`"no-plan"`}},
		{"forcing needs a reason", "?force=true", http.StatusBadRequest, []string{`"field":"reason"`}},
		{"forced with a reason", "?force=true&reason=plans%20are%20mandatory", http.StatusCreated, []string{`"version":2`, `"forced":true`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(t, http.MethodPost, url+"/schemas/signup.completed"+tc.query, "", strict)
			require.Equal(t, tc.status, status, body)
			for _, s := range tc.contains {
				require.Contains(t, body, s)
			}
		})
	}
	status, body = call(t, http.MethodGet, url+"/schemas/signup.completed/versions/2", "", "")
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `"reason":"plans are mandatory"`)
	status, body = call(t, http.MethodGet, url+"/schemas/signup.completed/versions", "", "")
	require.Equal(t, http.StatusOK, status, body)
	var versions []map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &versions))
	require.Len(t, versions, 2)

	status, body = call(t, http.MethodPut, url+"/schemas/signup.completed/settings", "", `{"compatibility":"full","enforcement":"quarantine"}`)
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `"compatibility":"FULL"`)
	require.Contains(t, body, `"enforcement":"quarantine"`)
}

// Bad input is a problem naming what is wrong, and registers nothing.
func TestSchemaRegistryRefusesBadInput(t *testing.T) {
	url, _ := schemaGateway(t, nil)
	cases := []struct {
		name, method, path, body string
		status                   int
	}{
		{"not JSON", http.MethodPost, "/schemas/x.y", `{"type":`, http.StatusUnprocessableEntity},
		{"not a schema", http.MethodPost, "/schemas/x.y", `{"type":"nope"}`, http.StatusUnprocessableEntity},
		{"a network $ref", http.MethodPost, "/schemas/x.y", `{"$ref":"http://127.0.0.1:1/s.json"}`, http.StatusUnprocessableEntity},
		{"deep nesting", http.MethodPost, "/schemas/x.y", strings.Repeat(`{"not":`, 5000) + "{}" + strings.Repeat("}", 5000), http.StatusUnprocessableEntity},
		{"a bad type", http.MethodPost, "/schemas/x%20y", `{}`, http.StatusBadRequest},
		{"a bad sample", http.MethodPost, "/schemas/x.y?sample=-1", `{}`, http.StatusBadRequest},
		{"a bad mode", http.MethodPut, "/schemas/x.y/settings", `{"compatibility":"sideways"}`, http.StatusBadRequest},
		{"an unknown version", http.MethodGet, "/schemas/page_view/versions/9", ``, http.StatusNotFound},
		{"an unknown type", http.MethodGet, "/schemas/no.such", ``, http.StatusNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(t, tc.method, url+tc.path, "", tc.body)
			require.Equal(t, tc.status, status, body)
			require.Contains(t, body, `"status":`, "a problem document")
		})
	}
	status, _ := call(t, http.MethodGet, url+"/schemas/x.y", "", "")
	require.Equal(t, http.StatusNotFound, status, "nothing was registered")
}

// With read keys set and no admin keys, schema writes are refused; with
// admin keys, only they write.
func TestSchemaWritesNeedAdminKeys(t *testing.T) {
	t.Run("read keys without admin keys", func(t *testing.T) {
		url, _ := schemaGateway(t, func(c *gateway.Config) { c.ReadKeys = []string{"reader"} })
		status, body := call(t, http.MethodPost, url+"/schemas/x.y", "reader", `{"type":"object"}`)
		require.Equal(t, http.StatusForbidden, status, body)
		require.Contains(t, body, "KILN_ADMIN_KEYS")
	})
	t.Run("admin keys", func(t *testing.T) {
		url, _ := schemaGateway(t, func(c *gateway.Config) {
			c.ReadKeys, c.AdminKeys = []string{"reader"}, []string{"admin"}
		})
		status, body := call(t, http.MethodPost, url+"/schemas/x.y", "reader", `{"type":"object"}`)
		require.Equal(t, http.StatusUnauthorized, status, body)
		status, body = call(t, http.MethodPost, url+"/schemas/x.y", "admin", `{"type":"object"}`)
		require.Equal(t, http.StatusCreated, status, body)
		status, body = call(t, http.MethodGet, url+"/schemas/x.y", "reader", "")
		require.Equal(t, http.StatusOK, status, body)
	})
}
