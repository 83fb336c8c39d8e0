package standalone_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/standalone/standalonetest"
)

// nodeDir holds the Node test clients; scripts/install-test-deps runs
// npm ci there (make test does).
func nodeDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../testsupport/node")
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dir, "node_modules"))
	require.NoError(t, err, "run scripts/install-test-deps (npm ci in testsupport/node)")
	return dir
}

// nodeClient runs a Node client script and returns its JSON lines as they come.
func nodeClient(ctx context.Context, t *testing.T, script string, args ...string) <-chan map[string]any {
	t.Helper()
	dir := nodeDir(t)
	cmd := exec.CommandContext(ctx, "node", append([]string{filepath.Join(dir, script)}, args...)...)
	cmd.Dir = dir
	cmd.Stderr = &testLog{t: t}
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	lines := make(chan map[string]any, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines <- m
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return lines
}

type testLog struct{ t *testing.T }

func (w *testLog) Write(p []byte) (int, error) {
	w.t.Logf("node: %s", strings.TrimSpace(string(p)))
	return len(p), nil
}

// nextLine waits for the client's next JSON line.
func nextLine(t *testing.T, lines <-chan map[string]any, within time.Duration) map[string]any {
	t.Helper()
	select {
	case m, ok := <-lines:
		require.True(t, ok, "the Node client ended without the expected output")
		return m
	case <-time.After(within):
		t.Fatalf("no output from the Node client within %s", within)
		return nil
	}
}

func TestNodeGRPCClientWithTheOldProto(t *testing.T) {
	in := standalonetest.Start(t, t.TempDir(), "KILN_INGEST_KEYS", "k1", "KILN_READ_KEYS", "k1", "KILN_ADMIN_KEYS", "admin")
	lines := nodeClient(testCtx(t), t, "grpc-orders.js", in.GRPCAddr, "k1")
	got := nextLine(t, lines, 2*time.Minute)
	created := got["created"].(map[string]any)
	require.NotEmpty(t, created["id"])
	require.Equal(t, "node@example.com", created["customerEmail"])
	require.Equal(t, 19.99, created["amount"])
	require.Equal(t, "created", created["status"])
	require.Equal(t, created, got["listed"], "GetOrders streams the order as created")
	require.Equal(t, got["invalidArgument"], got["bad"].(map[string]any)["code"])
	ack := got["ack"].(map[string]any)
	require.Equal(t, "server", ack["author"])
	require.Equal(t, "Ack: hello from node", ack["text"])
	require.Equal(t, "o-node", ack["orderId"])
}

func TestSocketIOWithNodeClients(t *testing.T) {
	in := standalonetest.Start(t, t.TempDir(), "WS_TOKEN", "ws-secret", "KILN_READ_KEYS", "reader", "KILN_ADMIN_KEYS", "admin")
	ctx := testCtx(t)

	t.Run("wrong or missing token refused", func(t *testing.T) {
		for _, token := range []string{"wrong", ""} {
			got := nextLine(t, nodeClient(ctx, t, "socketio-client.js", "refused", in.Base, "/notifications", token), time.Minute)
			require.Equal(t, map[string]any{"connectError": "Unauthorized"}, got, "token %q", token)
		}
		got := nextLine(t, nodeClient(ctx, t, "socketio-client.js", "refused", in.Base, "/chat", "reader"), time.Minute)
		require.Equal(t, map[string]any{"connected": true}, got, "a read key is a token too")
	})

	t.Run("order.canceled over HTTP reaches /notifications", func(t *testing.T) {
		lines := nodeClient(ctx, t, "socketio-client.js", "notify", in.Base, "ws-secret")
		require.Equal(t, map[string]any{"ready": true}, nextLine(t, lines, time.Minute))
		id := fmt.Sprintf("ord-%d", time.Now().UnixNano())
		body := fmt.Sprintf(`{"eventType":"order.canceled","userId":"ops","timestamp":%d,`+
			`"metadata":{"id":%q,"status":"canceled","reason":"r","createdAt":%q}}`,
			time.Now().UnixMilli(), id, time.Now().UTC().Format(time.RFC3339))
		resp, err := http.Post(in.Base+"/events", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
		for {
			u := nextLine(t, lines, time.Minute)["update"].(map[string]any)
			if u["orderId"] != id {
				continue
			}
			require.Equal(t, "canceled", u["status"])
			_, err := time.Parse(time.RFC3339, u["emittedAt"].(string))
			require.NoError(t, err)
			return
		}
	})

	t.Run("a chat message reaches 100 clients", func(t *testing.T) {
		lines := nodeClient(ctx, t, "socketio-client.js", "chat", in.Base, "ws-secret", "100")
		require.Equal(t, map[string]any{"ready": float64(100)}, nextLine(t, lines, 2*time.Minute))
		got := nextLine(t, lines, 2*time.Minute)
		require.Equal(t, float64(100), got["all"])
		msg := got["message"].(map[string]any)
		require.Equal(t, "node", msg["author"])
		require.NotEmpty(t, msg["createdAt"])
	})
}
