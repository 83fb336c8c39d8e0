package cli_test

import (
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/testsupport"
)

func TestConfigPrintsEverySettingRedacted(t *testing.T) {
	env := map[string]string{"INGEST_MAX_BATCH": "10", "NATS_URL": "nats://kiln:hunter2@nats:4222", "KILN_INGEST_KEYS": "ik_secret_1"}
	out, err := execute(t, env, "config", "ingest")
	require.NoError(t, err)
	for _, row := range []string{
		`INGEST_MAX_BATCH\s+10\s+env\s+1000\s+standalone, ingest, realtime`,
		`INGEST_PUBLISH_TIMEOUT\s+1500ms\s+default\s+1500ms\s`,
		`NATS_URL\s+nats://kiln:xxxxx@nats:4222\s+env\s+nats://127.0.0.1:4222\s`,
		`KILN_INGEST_KEYS\s+\[redacted\]\s+env\s+-\s`,
		`LOG_LEVEL\s+info\s+default\s+info\s+standalone, ingest, projector, notifier, gateway, webhooks, realtime`,
	} {
		require.Regexp(t, regexp.MustCompile(`(?m)^`+row), out)
	}
	require.NotContains(t, out, "hunter2")
	require.NotContains(t, out, "ik_secret_1")
	require.NotContains(t, out, "PROJECTOR_BATCH_SIZE", "kiln config ingest lists ingest's settings")

	out, err = execute(t, nil, "config")
	require.NoError(t, err)
	require.Contains(t, out, "PROJECTOR_BATCH_SIZE")
	_, err = execute(t, nil, "config", "frobnicate")
	require.ErrorContains(t, err, `invalid argument "frobnicate"`)

	out, err = execute(t, nil, "config", "--markdown")
	require.NoError(t, err)
	require.Contains(t, out, "| `INGEST_MAX_BATCH` | `1000` | standalone, ingest, realtime |")
}

func TestConfigCheckNamesTheNearestSetting(t *testing.T) {
	out, err := execute(t, map[string]string{"INGEST_MAX_BATCHH": "10", "PORT": "8080", "HOME": "/root"}, "config", "check")
	require.ErrorContains(t, err, "1 unknown variable")
	require.Equal(t, "INGEST_MAX_BATCHH: no Kiln setting has this name; did you mean INGEST_MAX_BATCH?\n", out)

	out, err = execute(t, map[string]string{"INGEST_MAX_BATCH": "10"}, "config", "check")
	require.NoError(t, err)
	require.Equal(t, "no unknown variables\n", out)
}

// TestStartWarnsOfUnknownVariables: kiln run and kiln serve log a misspelt
// variable with the nearest name, whether or not the rest of the settings
// let them start, and start all the same.
func TestStartWarnsOfUnknownVariables(t *testing.T) {
	// Refused for another setting: the warning comes first.
	out, err := execute(t, map[string]string{"INGEST_MAX_BATCHH": "10", "PORT": "0"}, "run")
	require.ErrorContains(t, err, "PORT must be a TCP port")
	require.Contains(t, out, `level=WARN msg="config: unknown variable, ignored (kiln config check)"`)
	require.Contains(t, out, `name=INGEST_MAX_BATCHH did_you_mean=INGEST_MAX_BATCH`)
	out, err = execute(t, map[string]string{"GATEWAY_SSE_HEARTBEET": "1s", "INGEST_MAX_BATCH": "0"}, "serve", "ingest")
	require.ErrorContains(t, err, "INGEST_MAX_BATCH")
	require.Contains(t, out, `"name":"GATEWAY_SSE_HEARTBEET","did_you_mean":"GATEWAY_SSE_HEARTBEAT"`)

	// Started: it runs on.
	ns := testsupport.StartNATS(t)
	admin := addr(t)
	s := startRole(t, "ingest", map[string]string{"NATS_URL": ns.URL(), "INGEST_ADDR": addr(t), "INGEST_ADMIN_ADDR": admin,
		"INGEST_MAX_BATCHH": "10"})
	require.Eventually(t, func() bool {
		status, _ := get("http://" + admin + "/healthz")
		return status == http.StatusOK
	}, 2*time.Minute, 50*time.Millisecond, "kiln serve ingest answers /healthz")
	require.Contains(t, s.log.String(), `"did_you_mean":"INGEST_MAX_BATCH"`)
	exited, err := s.exited()
	require.False(t, exited, err)
	require.NoError(t, s.stop())
}
