package standalone_test

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/standalone"
	"github.com/kilnhq/kiln/testsupport"
)

// Issue 21 item 8: a password in MONGO_URI or REDIS_URL appears in no log
// line and no returned error, whether the URL is unparsable, unreachable or
// in use.
func TestStoreURLPasswordsAreNeverLoggedOrReturned(t *testing.T) {
	t.Parallel()
	const secret = "Sup3rSecretPassw0rd"
	redisURL := testsupport.StartRedis(t).URL()
	closed := strconv.Itoa(testsupport.FreePort(t))
	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"unparsable REDIS_URL", map[string]string{"REDIS_URL": "redis://:" + secret + "@127.0.0.1:port/0"}},
		{"unparsable MONGO_URI", map[string]string{"MONGO_URI": "mongodb://kiln:" + secret + "@127.0.0.1:port/"}},
		{"unreachable MONGO_URI", map[string]string{"MONGO_URI": "mongodb://kiln:" + secret + "@127.0.0.1:" + closed + "/?serverSelectionTimeoutMS=500&connectTimeoutMS=500"}},
		{"REDIS_URL in use", map[string]string{"REDIS_URL": strings.Replace(redisURL, "redis://", "redis://:"+secret+"@", 1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{
				"KILN_DATA_DIR": t.TempDir(),
				"PORT":          strconv.Itoa(testsupport.FreePort(t)),
				"ADMIN_PORT":    strconv.Itoa(testsupport.FreePort(t)),
				"NATS_PORT":     strconv.Itoa(testsupport.FreePort(t)),
				"MONGO_PORT":    strconv.Itoa(testsupport.FreePort(t)),
				"GRPC_ADDR":     "127.0.0.1:" + strconv.Itoa(testsupport.FreePort(t)),
				"REDIS_URL":     redisURL,
			}
			for k, v := range tc.env {
				env[k] = v
			}
			cfg, err := standalone.LoadConfig(env)
			if err != nil {
				require.NotContains(t, err.Error(), secret)
				return
			}
			logs := &testsupport.LogBuffer{}
			log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- standalone.Run(ctx, cfg, log) }()
			var runErr error
			stopped := false
			require.Eventually(t, func() bool {
				select {
				case runErr = <-done:
					stopped = true
					return true
				default:
					return strings.Contains(logs.String(), "kiln standalone starting")
				}
			}, 5*time.Minute, 50*time.Millisecond, "neither started nor failed; log:\n%s", logs.String())
			cancel()
			if !stopped {
				select {
				case runErr = <-done:
				case <-time.After(2 * time.Minute):
					t.Fatal("the standalone did not stop")
				}
			}
			require.NotContains(t, logs.String(), secret)
			if runErr != nil {
				require.NotContains(t, runErr.Error(), secret)
			}
			require.True(t, runErr != nil || strings.Contains(logs.String(), "xxxxx"),
				"the run failed or logged the URL redacted; log:\n%s", logs.String())
		})
	}
}
