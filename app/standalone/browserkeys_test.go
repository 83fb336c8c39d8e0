package standalone_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/kilnhq/kiln/app/standalone/standalonetest"
	"github.com/kilnhq/kiln/httpserver/tokens"
	kilnv1 "github.com/kilnhq/kiln/realtime/gen/kiln/v1"
	ordersv1 "github.com/kilnhq/kiln/realtime/gen/orders/v1"
)

// TestSocketIOWritesNeedWriteRights (issue 21 item 5): with
// KILN_INGEST_KEYS set, a /chat message or an order:update rebroadcast from
// a client holding a read key or WS_TOKEN is refused with an error and
// never stored or relayed; a client whose token is also an ingest key
// writes.
func TestSocketIOWritesNeedWriteRights(t *testing.T) {
	t.Parallel()
	in := standalonetest.Start(t, t.TempDir(), "KILN_INGEST_KEYS", "writer,both", "KILN_READ_KEYS", "reader,both",
		"KILN_ADMIN_KEYS", "admin", "WS_TOKEN", "ws-secret")
	ctx := testCtx(t)
	listener := nodeClient(ctx, t, "socketio-client.js", "session", in.Base, "/chat", "reader")
	require.Equal(t, map[string]any{"ready": true}, nextLine(t, listener, 2*time.Minute))

	for _, c := range []struct{ nsp, token, event, data string }{
		{"/chat", "reader", "message", `{"author":"intruder","text":"from-reader"}`},
		{"/chat", "ws-secret", "message", `{"author":"intruder","text":"from-ws-token"}`},
		{"/notifications", "reader", "order:update", `{"orderId":"o-1","status":"hacked"}`},
		{"/notifications", "ws-secret", "order:update", `{"orderId":"o-1","status":"hacked"}`},
	} {
		lines := nodeClient(ctx, t, "socketio-client.js", "session", in.Base, c.nsp, c.token, c.event, c.data)
		require.Equal(t, map[string]any{"ready": true}, nextLine(t, lines, time.Minute), "%s %s", c.nsp, c.token)
		got := nextLine(t, lines, time.Minute)
		e, ok := got["error"].(map[string]any)
		require.True(t, ok, "%s with %s: want an error, got %v", c.event, c.token, got)
		require.Contains(t, e["message"], "forbidden")
	}

	writer := nodeClient(ctx, t, "socketio-client.js", "session", in.Base, "/chat", "both", "message", `{"author":"w","text":"from-writer"}`)
	require.Equal(t, map[string]any{"ready": true}, nextLine(t, writer, time.Minute))
	for {
		m := nextLine(t, listener, time.Minute)["message"].(map[string]any)
		require.NotContains(t, []string{"from-reader", "from-ws-token"}, m["text"], "a refused message was relayed")
		if m["text"] == "from-writer" {
			break
		}
	}
	var stored []storedEvent
	getJSON(t, in.Base+"/events?type=chat.message&access_token=reader", &stored)
	require.Len(t, stored, 1, "only the writer's message is stored: %v", stored)
}

const (
	publishable = "pk_test_0123456789abcdef"
	shopOrigin  = "https://shop.example.com"
	tokenSecret = "standalone-test-secret-0123456789abcdef"
)

// browserKeysEnv is a standalone with every kind of key.
func browserKeysEnv() []string {
	return []string{"KILN_INGEST_KEYS", "writer", "KILN_READ_KEYS", "reader", "KILN_ADMIN_KEYS", "admin",
		"KILN_PUBLISHABLE_KEYS", publishable + " types=page.*,chat.message origins=" + shopOrigin,
		"KILN_TOKEN_SECRETS", tokenSecret}
}

func mint(t *testing.T, m tokens.Mint, now time.Time) string {
	t.Helper()
	k, err := tokens.NewKeyring(tokens.Config{Secrets: []string{tokenSecret}})
	require.NoError(t, err)
	tok, err := k.Sign(m, now)
	require.NoError(t, err)
	return tok
}

// send makes a request and returns the status and the decoded JSON body.
func send(t *testing.T, method, url, body string, header ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

func event(typ, user, id string) string {
	return fmt.Sprintf(`{"id":%q,"eventType":%q,"userId":%q,"timestamp":%d,"metadata":{"id":%q,"status":"created"}}`,
		id, typ, user, time.Now().UnixMilli(), id)
}

// TestPublishableKeys: a publishable key writes only its types, only from
// its origins, also from ?key= (sendBeacon), and never reads.
func TestPublishableKeys(t *testing.T) {
	t.Parallel()
	in := standalonetest.Start(t, t.TempDir(), browserKeysEnv()...)
	pk := []string{"X-API-Key", publishable, "Origin", shopOrigin}

	code, _ := send(t, "POST", in.Base+"/events", event("page.view", "u1", "pk-1"), pk...)
	require.Equal(t, http.StatusAccepted, code)
	code, body := send(t, "POST", in.Base+"/events", event("order.shipped", "u1", "pk-2"), pk...)
	require.Equal(t, http.StatusForbidden, code)
	require.Equal(t, "eventType", body["errors"].([]any)[0].(map[string]any)["field"], body)

	// A batch keeps its allowed items and refuses the others, per item.
	code, body = send(t, "POST", in.Base+"/events",
		"["+event("page.click", "u1", "pk-3")+","+event("admin.grant", "u1", "pk-4")+"]", pk...)
	require.Equal(t, http.StatusAccepted, code, body)
	results := body["results"].([]any)
	require.NotZero(t, results[0].(map[string]any)["seq"])
	require.EqualValues(t, http.StatusForbidden, results[1].(map[string]any)["error"].(map[string]any)["status"])

	for _, origin := range []string{"https://evil.example", ""} {
		code, body = send(t, "POST", in.Base+"/events", event("page.view", "u1", "pk-5"), "X-API-Key", publishable, "Origin", origin)
		require.Equal(t, http.StatusForbidden, code, "origin %q: %v", origin, body)
	}
	// sendBeacon cannot set headers: the key rides in the URL. An ingest
	// key there is no key.
	code, _ = send(t, "POST", in.Base+"/events?key="+publishable, event("page.view", "u1", "pk-6"), "Origin", shopOrigin)
	require.Equal(t, http.StatusAccepted, code)
	code, _ = send(t, "POST", in.Base+"/events?key=writer", event("page.view", "u1", "pk-7"))
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = send(t, "GET", in.Base+"/events", "", pk...)
	require.Equal(t, http.StatusUnauthorized, code, "a publishable key cannot read")

	// What the key wrote, once projected: its types only.
	require.Eventually(t, func() bool {
		var stored []storedEvent
		getJSON(t, in.Base+"/events?access_token=reader", &stored)
		return len(stored) >= 3
	}, 2*time.Minute, 100*time.Millisecond)
	var stored []storedEvent
	getJSON(t, in.Base+"/events?access_token=reader", &stored)
	var ids []string
	for _, ev := range stored {
		ids = append(ids, ev.ID)
	}
	require.ElementsMatch(t, []string{"pk-1", "pk-3", "pk-6"}, ids)
}

// sseFrames reads a /stream response into frames: event name and data.
func sseFrames(ctx context.Context, t *testing.T, url string) <-chan [2]string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	frames := make(chan [2]string, 256)
	go func() {
		defer close(frames)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var name, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if data != "" {
					frames <- [2]string{name, data}
				}
				name, data = "", ""
			case strings.HasPrefix(line, "event:"):
				name = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
			case strings.HasPrefix(line, "data:"):
				data = strings.TrimSpace(strings.TrimPrefix(line, "data:"))
			}
		}
	}()
	return frames
}

// TestSubscriberTokens: a token reads only what its claims allow on GET
// /events, /events/{id}, /stream, gRPC Subscribe and Socket.IO, whatever
// the query asks; expired and tampered tokens are 401 with the reason.
func TestSubscriberTokens(t *testing.T) {
	t.Parallel()
	in := standalonetest.Start(t, t.TempDir(), browserKeysEnv()...)
	ctx := testCtx(t)
	now := time.Now()
	wild := mint(t, tokens.Mint{Types: []string{"order.*"}, UserID: "u1", TTL: 10 * time.Minute}, now)
	exact := mint(t, tokens.Mint{Types: []string{"order.shipped"}, UserID: "u1", TTL: 10 * time.Minute}, now)
	expired := mint(t, tokens.Mint{Types: []string{"order.*"}, TTL: time.Minute}, now.Add(-time.Hour))
	parts := strings.Split(wild, ".")
	tampered := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))

	// Subscribers first, asking for everything.
	frames := sseFrames(ctx, t, in.Base+"/stream?type=%3E&access_token="+url.QueryEscape(wild))
	sub, err := kilnv1.NewEventServiceClient(dialGRPC(t, in.GRPCAddr)).Subscribe(
		metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+wild), &kilnv1.SubscribeRequest{})
	require.NoError(t, err)
	notes := nodeClient(ctx, t, "socketio-client.js", "session", in.Base, "/notifications", wild)
	require.Equal(t, map[string]any{"ready": true}, nextLine(t, notes, 2*time.Minute))
	_, err = mustStream(kilnv1.NewEventServiceClient(dialGRPC(t, in.GRPCAddr)).Subscribe(
		metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+wild), &kilnv1.SubscribeRequest{UserId: "u2"}))
	require.Equal(t, codes.PermissionDenied, status.Code(err), "another user's events: %v", err)

	w := []string{"Authorization", "Bearer writer"}
	for _, ev := range []string{
		event("order.shipped", "u2", "t-other-user"), event("page.view", "u1", "t-other-type"),
		event("order.shipped", "u1", "t-mine-1"), event("order.packed", "u1", "t-mine-2"),
	} {
		code, body := send(t, "POST", in.Base+"/events", ev, w...)
		require.Equal(t, http.StatusAccepted, code, body)
	}
	mine := []string{"t-mine-1", "t-mine-2"}

	var sse []string
	for len(sse) < 2 {
		select {
		case f, ok := <-frames:
			require.True(t, ok, "the stream ended")
			var ev storedEvent
			if json.Unmarshal([]byte(f[1]), &ev) == nil && ev.ID != "" {
				require.True(t, strings.HasPrefix(ev.EventType, "order."), "frame %v", f)
				sse = append(sse, ev.ID)
			}
			require.NotEqual(t, "metrics", f[0], "a token's stream gets no metrics frames")
		case <-ctx.Done():
			t.Fatal("no SSE frames")
		}
	}
	require.Equal(t, mine, sse, "SSE: the token's events only")

	var grpcIDs []string
	for len(grpcIDs) < 2 {
		ev, err := sub.Recv()
		require.NoError(t, err)
		grpcIDs = append(grpcIDs, ev.GetId())
	}
	require.Equal(t, mine, grpcIDs, "gRPC Subscribe: the token's events only")

	var updates []string
	for len(updates) < 2 {
		if u, ok := nextLine(t, notes, time.Minute)["update"].(map[string]any); ok {
			updates = append(updates, u["orderId"].(string))
		}
	}
	require.Equal(t, mine, updates, "Socket.IO /notifications: the token's order updates only")

	// GET /events: the token's user and types, whatever the query asks.
	require.Eventually(t, func() bool {
		code, _ := send(t, "GET", in.Base+"/events/t-mine-1?access_token="+exact, "")
		return code == http.StatusOK
	}, 2*time.Minute, 100*time.Millisecond)
	var list []storedEvent
	getJSON(t, in.Base+"/events?access_token="+exact, &list)
	require.Len(t, list, 1)
	require.Equal(t, "t-mine-1", list[0].ID)
	getJSON(t, in.Base+"/events?type=order.shipped&type=order.packed&access_token="+wild, &list)
	require.Len(t, list, 2, "a wildcard token lists the types it names")
	getJSON(t, in.Base+"/events?access_token="+wild, &list)
	require.Len(t, list, 2, "a wildcard token with no type= lists its patterns' events")
	require.ElementsMatch(t, mine, []string{list[0].ID, list[1].ID})
	for _, c := range []struct {
		path  string
		token string
		want  int
	}{
		{"/events?userId=u2", exact, http.StatusForbidden},
		{"/events?type=page.view", wild, http.StatusForbidden},
		{"/events/t-other-user", wild, http.StatusNotFound},
		{"/events/t-other-type", wild, http.StatusNotFound},
		{"/events/t-mine-2", wild, http.StatusOK},
		{"/metrics", wild, http.StatusForbidden},
		{"/orders", wild, http.StatusForbidden},
		{"/events", expired, http.StatusUnauthorized},
		{"/events", tampered, http.StatusUnauthorized},
	} {
		sep := "?"
		if strings.Contains(c.path, "?") {
			sep = "&"
		}
		code, body := send(t, "GET", in.Base+c.path+sep+"access_token="+url.QueryEscape(c.token), "")
		require.Equal(t, c.want, code, "%s: %v", c.path, body)
		if c.token == expired {
			require.Contains(t, body["detail"], "token expired")
		}
		if c.token == tampered {
			require.Contains(t, body["detail"], "bad signature")
		}
	}
	_, err = mustStream(kilnv1.NewEventServiceClient(dialGRPC(t, in.GRPCAddr)).Subscribe(
		metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+expired), &kilnv1.SubscribeRequest{}))
	require.Equal(t, codes.Unauthenticated, status.Code(err))
	require.Contains(t, status.Convert(err).Message(), "token expired")
	// A token reads only events: not every user's orders, and it never writes.
	cc := dialGRPC(t, in.GRPCAddr)
	_, err = mustOrder(ordersv1.NewOrderServiceClient(cc).GetOrders(
		metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+wild), &ordersv1.GetOrdersRequest{}))
	require.Equal(t, codes.PermissionDenied, status.Code(err), err)
	_, err = kilnv1.NewEventServiceClient(cc).Publish(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+wild),
		&kilnv1.PublishRequest{Events: []*kilnv1.Event{{EventType: "order.shipped", UserId: "u1", Timestamp: 1}}})
	require.Equal(t, codes.Unauthenticated, status.Code(err), err)
	refused := nextLine(t, nodeClient(ctx, t, "socketio-client.js", "session", in.Base, "/notifications", tampered), time.Minute)
	require.Equal(t, "Unauthorized", refused["connectError"])
	require.Contains(t, refused["reason"], "bad signature")
}
