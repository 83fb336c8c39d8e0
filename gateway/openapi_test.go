package gateway_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
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
