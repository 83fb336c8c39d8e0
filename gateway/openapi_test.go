package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/santhosh-tekuri/jsonschema/v5"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/connect"
	"github.com/kilnhq/kiln/gateway"
	"github.com/kilnhq/kiln/ingest"
	"github.com/kilnhq/kiln/testsupport"
	"github.com/kilnhq/kiln/webhooks"
)

// TestOpenAPIMatchesRoutes serves the gateway on one app with ingest and the
// health routes, as standalone mode does, and checks the OpenAPI document it
// serves lists exactly the routes the app has: a route added without docs,
// or docs left for a route that went away, fails here.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	ns := testsupport.StartNATS(t)
	log := testsupport.Logger(t)
	icfg, err := ingest.LoadConfig(map[string]string{"NATS_URL": ns.URL()})
	require.NoError(t, err)
	nc, err := connect.NATS(ns.URL(), t.Name(), connect.Append, log)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	isvc, err := ingest.New(context.Background(), icfg, ingest.Deps{NATS: nc, Metrics: prometheus.NewRegistry(), Log: log})
	require.NoError(t, err)
	deps := deadDeps(t)
	deps.JetStream = ns.JetStream(t) // the schema registry's routes
	svc, err := gateway.New(gateway.Config{}, deps)
	require.NoError(t, err)
	// The standalone also mounts the webhooks admin API.
	wcfg := webhooks.Config{AttemptTimeout: time.Second, Schedule: []time.Duration{time.Second}, DisableAfter: time.Hour,
		Concurrency: 1, PerEndpoint: 1, EndpointRefresh: time.Second, StreamReplicas: 1}
	wsvc, err := webhooks.New(context.Background(), wcfg, webhooks.Deps{JetStream: ns.JetStream(t), Mongo: deps.Mongo, Log: log})
	require.NoError(t, err)
	app := newApp(t, svc, func(r fiber.Router) { isvc.Register(r); wsvc.Register(r) })
	url := serveApp(t, app)

	r := get(t, url+"/openapi.json")
	require.Equal(t, 200, r.status)
	require.Contains(t, r.header.Get("Content-Type"), "application/json")
	doc := decode[map[string]any](t, r)
	require.Regexp(t, `^3\.1\.\d+$`, doc["openapi"])

	param := regexp.MustCompile(`:(\w+)`)
	var routes []string
	for _, rt := range app.GetRoutes(true) {
		if rt.Method == fiber.MethodHead || strings.HasPrefix(rt.Path, "/docs/") {
			continue // HEAD mirrors GET; /docs/:file are the docs page's assets
		}
		routes = append(routes, rt.Method+" "+param.ReplaceAllString(rt.Path, "{$1}"))
	}
	var documented []string
	for path, item := range doc["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			if slices.Contains([]string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}, method) {
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(routes)
	slices.Sort(documented)
	require.Equal(t, routes, slices.Compact(routes), "no route is registered twice")
	require.Equal(t, routes, documented, "app routes (left) and OpenAPI paths (right) differ")
	require.Contains(t, routes, "POST /events", "ingest is on the app")
	require.Contains(t, routes, "GET /readyz", "the health routes are on the app")
	require.Contains(t, routes, "POST /webhooks/{provider}", "inbound webhooks come with ingest")

	requireRefsResolve(t, doc, doc)
}

// requireRefsResolve checks every local $ref in v points into doc.
func requireRefsResolve(t *testing.T, doc, v any) {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			if k != "$ref" {
				requireRefsResolve(t, doc, child)
				continue
			}
			ref := child.(string)
			require.True(t, strings.HasPrefix(ref, "#/"), "only local refs: %s", ref)
			node := doc
			for _, part := range strings.Split(ref[2:], "/") {
				if a, ok := node.([]any); ok { // allOf/0
					i, err := strconv.Atoi(part)
					require.True(t, err == nil && i >= 0 && i < len(a), "unresolved %s", ref)
					node = a[i]
					continue
				}
				m, ok := node.(map[string]any)
				require.True(t, ok, "unresolved %s", ref)
				node, ok = m[part]
				require.True(t, ok, "unresolved %s", ref)
			}
		}
	case []any:
		for _, child := range x {
			requireRefsResolve(t, doc, child)
		}
	}
}

// TestOpenAPIPublishesRegisteredTypes: a type pushed at runtime is in the
// next GET /openapi.json as Event.<type>, with its references made local
// to the document, and the ingest body is a oneOf of the registered types
// keyed by eventType. The served document, compiled as JSON Schema 2020-12
// (what OpenAPI 3.1 uses), accepts and refuses what ingest does.
func TestOpenAPIPublishesRegisteredTypes(t *testing.T) {
	t.Parallel()
	url, _ := schemaGateway(t, nil)

	// A registry that does not answer in time leaves the types out (the
	// embedded document is served): wait for them, on a loaded machine too.
	var comps map[string]any
	require.Eventually(t, func() bool {
		comps = openAPIDoc(t, url)["components"].(map[string]any)["schemas"].(map[string]any)
		return comps["Event.order.created"] != nil
	}, 2*time.Minute, 100*time.Millisecond, "the embedded schemas are version 1 of their types")
	require.NotContains(t, comps, "Event.signup.completed")

	status, body := call(t, http.MethodPost, url+"/schemas/signup.completed", "", signupV1)
	require.Equal(t, http.StatusCreated, status, body)
	// A second type referring to the first: the reference stays within the document.
	status, body = call(t, http.MethodPost, url+"/schemas/signup.upgraded", "",
		`{"$schema":"https://json-schema.org/draft/2020-12/schema","allOf":[{"$ref":"signup.completed.json"}],
		 "required":["metadata"],"properties":{"metadata":{"required":["plan"],"properties":{"seats":{"type":"integer","minimum":1}}}}}`)
	require.Equal(t, http.StatusCreated, status, body)

	var raw response
	var doc map[string]any
	require.Eventually(t, func() bool {
		raw = get(t, url+"/openapi.json")
		require.Equal(t, http.StatusOK, raw.status)
		require.True(t, json.Valid(raw.body))
		doc = decode[map[string]any](t, raw)
		return doc["components"].(map[string]any)["schemas"].(map[string]any)["Event.signup.upgraded"] != nil
	}, 2*time.Minute, 100*time.Millisecond, "the pushed types are published")
	require.Regexp(t, `^3\.1\.\d+$`, doc["openapi"])
	comps = doc["components"].(map[string]any)["schemas"].(map[string]any)
	signup := comps["Event.signup.completed"].(map[string]any)
	require.EqualValues(t, 1, signup["x-kiln-schema-version"])
	inner := signup["allOf"].([]any)[0].(map[string]any)
	require.NotContains(t, inner, "$id", "the registry's $id would resolve refs outside the document")
	require.Equal(t, "#/components/schemas/EventInput", inner["allOf"].([]any)[0].(map[string]any)["$ref"])
	upgraded := comps["Event.signup.upgraded"].(map[string]any)["allOf"].([]any)[0].(map[string]any)
	require.Equal(t, "#/components/schemas/Event.signup.completed/allOf/0", upgraded["allOf"].([]any)[0].(map[string]any)["$ref"])

	anyEvent := comps["AnyEventInput"].(map[string]any)
	disc := anyEvent["discriminator"].(map[string]any)
	require.Equal(t, "eventType", disc["propertyName"])
	require.Equal(t, "#/components/schemas/Event.signup.completed", disc["mapping"].(map[string]any)["signup.completed"])
	require.Contains(t, anyEvent["oneOf"], map[string]any{"$ref": "#/components/schemas/OtherEventInput"}, "SCHEMAS_UNKNOWN_TYPES=accept by default")
	body201 := doc["paths"].(map[string]any)["/events"].(map[string]any)["post"].(map[string]any)["requestBody"].(map[string]any)
	require.Contains(t, fmt.Sprint(body201), "#/components/schemas/AnyEventInput")
	requireRefsResolve(t, doc, doc)

	// The document as a validator sees it.
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.LoadURL = func(u string) (io.ReadCloser, error) { return nil, fmt.Errorf("no fetch: %s", u) }
	require.NoError(t, c.AddResource("mem:///openapi.json", bytes.NewReader(raw.body)))
	s, err := c.Compile("mem:///openapi.json#/components/schemas/AnyEventInput")
	require.NoError(t, err)
	for _, tc := range []struct {
		event string
		valid bool
	}{
		{`{"eventType":"signup.completed","userId":"u","timestamp":1,"metadata":{"plan":"pro"}}`, true},
		{`{"eventType":"signup.completed","userId":"u","timestamp":1,"metadata":{"plan":5}}`, false},
		{`{"eventType":"signup.upgraded","userId":"u","timestamp":1,"metadata":{"plan":"pro","seats":3}}`, true},
		{`{"eventType":"signup.upgraded","userId":"u","timestamp":1,"metadata":{"seats":3}}`, false},
		{`{"eventType":"signup.upgraded","userId":"u","timestamp":1,"metadata":{"plan":7,"seats":3}}`, false},
		{`{"eventType":"order.created","userId":"u","timestamp":1,"metadata":{"id":"o1","status":"created","amount":-1,"currency":"EUR","customerEmail":"a@b.c","createdAt":1}}`, false},
		{`{"eventType":"never.registered","userId":"u","timestamp":1,"metadata":{"anything":true}}`, true},
		{`{"eventType":"never.registered","userId":"u","timestamp":1,"colour":"red"}`, false},
	} {
		var v any
		require.NoError(t, json.Unmarshal([]byte(tc.event), &v))
		err := s.Validate(v)
		require.Equal(t, tc.valid, err == nil, "%s: %v", tc.event, err)
	}
}

func openAPIDoc(t *testing.T, url string) map[string]any {
	t.Helper()
	r := get(t, url+"/openapi.json")
	require.Equal(t, http.StatusOK, r.status)
	return decode[map[string]any](t, r)
}
