package standalone_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"

	"github.com/kilnhq/kiln/app/standalone/standalonetest"
	kilnv1 "github.com/kilnhq/kiln/realtime/gen/kiln/v1"
	"github.com/kilnhq/kiln/telemetry/otlpsink"
)

// TestOneEventIsOneConnectedTrace posts one order, with a caller's
// traceparent, to a standalone exporting to an in-memory OTLP receiver,
// and finds one trace covering the request, the append and every consumer
// (projections, notifier decision and delivery, live fan-out, outbound
// webhook), each span's parent in the trace.
func TestOneEventIsOneConnectedTrace(t *testing.T) {
	t.Parallel()
	sink, err := otlpsink.Start(otlpsink.Options{})
	require.NoError(t, err)
	t.Cleanup(sink.Close)
	in := standalonetest.Start(t, t.TempDir(), "OTEL_EXPORTER_OTLP_ENDPOINT", sink.Endpoint(),
		"WEBHOOKS_ALLOW_NETWORKS", "127.0.0.0/8")

	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(rc.Close)
	resp, err := http.Post(in.Base+"/webhook-endpoints", "application/json",
		strings.NewReader(`{"url":"`+rc.URL+`","filters":["order.*"]}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)

	const traceID, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	now := time.Now().UnixMilli()
	body := fmt.Sprintf(`{"id":"o-trace","eventType":"order.created","userId":"u1","timestamp":%d,"metadata":`+
		`{"id":"o-trace","status":"paid","amount":5000,"currency":"EUR","customerEmail":"a@example.com","createdAt":%d}}`, now, now)
	// The endpoint cache may not know the new endpoint yet: post until the
	// dispatch shows up (the event id makes every repeat a duplicate).
	want := []string{"POST /events", "append", "project projector-history", "project projector-counters",
		"project projector-recent", "notify evaluate", "notify decide big-order", "deliver log", "live fan-out",
		"webhook dispatch"}
	var names []string
	require.Eventually(t, func() bool {
		req, _ := http.NewRequest(http.MethodPost, in.Base+"/events", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("traceparent", "00-"+traceID+"-"+callerSpan+"-01")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
		names = nil
		for _, s := range sink.Spans() {
			if s.TraceID == traceID && !contains(names, s.Name) {
				names = append(names, s.Name)
			}
		}
		for _, w := range want {
			if !contains(names, w) {
				return false
			}
		}
		return true
	}, 3*time.Minute, 500*time.Millisecond, "spans of the trace: %v", &names)

	ids := map[string]bool{callerSpan: true}
	var spans []otlpsink.Span
	for _, s := range sink.Spans() {
		if s.TraceID == traceID {
			ids[s.SpanID] = true
			spans = append(spans, s)
		}
	}
	for _, s := range spans {
		require.True(t, ids[s.ParentID], "span %q has parent %s outside the trace", s.Name, s.ParentID)
		require.Equal(t, "kiln", s.Service)
	}
	byName := map[string]otlpsink.Span{}
	for _, s := range spans {
		if _, seen := byName[s.Name]; !seen {
			byName[s.Name] = s
		}
	}
	require.Equal(t, callerSpan, byName["POST /events"].ParentID, "the caller's traceparent is honoured")
	appendID := byName["append"].SpanID
	require.Equal(t, byName["POST /events"].SpanID, byName["append"].ParentID)
	for _, consumer := range []string{"project projector-history", "project projector-counters", "project projector-recent",
		"notify evaluate", "live fan-out", "webhook dispatch"} {
		require.Equal(t, appendID, byName[consumer].ParentID, "%s is a child of the append", consumer)
	}
	require.Equal(t, byName["notify evaluate"].SpanID, byName["notify decide big-order"].ParentID)
	require.Equal(t, byName["notify decide big-order"].SpanID, byName["deliver log"].ParentID)
	summary, _ := json.Marshal(sortedNames(spans))
	t.Logf("trace %s: %s", traceID, summary)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func sortedNames(spans []otlpsink.Span) []string {
	out := make([]string, 0, len(spans))
	for _, s := range spans {
		out = append(out, s.Name)
	}
	sort.Strings(out)
	return out
}

// TestGRPCPublishIsTheAppendsParent publishes one event over gRPC with a
// caller's traceparent in the metadata: the call's server span is the
// append's parent, and a consumer continues the same trace.
func TestGRPCPublishIsTheAppendsParent(t *testing.T) {
	t.Parallel()
	sink, err := otlpsink.Start(otlpsink.Options{})
	require.NoError(t, err)
	t.Cleanup(sink.Close)
	in := standalonetest.Start(t, t.TempDir(), "OTEL_EXPORTER_OTLP_ENDPOINT", sink.Endpoint())
	events := kilnv1.NewEventServiceClient(dialGRPC(t, in.GRPCAddr))

	const traceID, callerSpan = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", "00-"+traceID+"-"+callerSpan+"-01")
	_, err = events.Publish(ctx, &kilnv1.PublishRequest{Events: []*kilnv1.Event{
		{Id: "grpc-trace", EventType: "grpc.trace", UserId: "u1", Timestamp: float64(time.Now().UnixMilli())}}})
	require.NoError(t, err)

	byName := map[string]otlpsink.Span{}
	require.Eventually(t, func() bool {
		for _, s := range sink.Spans() {
			if s.TraceID == traceID {
				byName[s.Name] = s
			}
		}
		_, call := byName["kiln.v1.EventService/Publish"]
		_, history := byName["project projector-history"]
		return call && history
	}, 3*time.Minute, 200*time.Millisecond, "spans: %v", byName)
	call := byName["kiln.v1.EventService/Publish"]
	require.Equal(t, callerSpan, call.ParentID, "the caller's traceparent is honoured")
	require.Equal(t, call.SpanID, byName["append"].ParentID)
	require.Equal(t, byName["append"].SpanID, byName["project projector-history"].ParentID)
}
