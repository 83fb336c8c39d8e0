package standalone_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/app/standalone"
	"github.com/kilnhq/kiln/app/standalone/standalonetest"
	"github.com/kilnhq/kiln/readmodel"
)

// TestStandaloneRunsTheNotifierWithTheExampleRules posts an order the
// example rules alert on and reads the alert back from GET /alerts: decided
// once and delivered on the log channel only, Slack and email being off
// without their settings.
func TestStandaloneRunsTheNotifierWithTheExampleRules(t *testing.T) {
	in := standalonetest.Start(t, t.TempDir())
	post := func(body string) {
		resp, err := http.Post(in.Base+"/events", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 202, resp.StatusCode)
	}
	now := time.Now().UnixMilli()
	order := func(id string, amount int) string {
		return fmt.Sprintf(`{"id":%q,"eventType":"order.created","userId":"u1","timestamp":%d,"metadata":`+
			`{"id":%q,"status":"paid","amount":%d,"currency":"EUR","customerEmail":"a@example.com","createdAt":%d}}`,
			id, now, id, amount, now)
	}
	post(order("o-1", 5000))
	post(order("o-2", 5)) // below the rule's amount

	var alerts []readmodel.AlertView
	require.Eventually(t, func() bool {
		resp, err := http.Get(in.Base + "/alerts")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		alerts = nil
		return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&alerts) == nil &&
			len(alerts) == 1 && alerts[0].Status == readmodel.DeliverySent
	}, 3*time.Minute, 50*time.Millisecond, "no sent alert for o-1 (GET /alerts)")
	a := alerts[0]
	require.Equal(t, "big-order", a.Rule)
	require.Equal(t, "o-1", a.EventID)
	require.Equal(t, ":moneybag: Order o-1 of 5000 EUR by u1", a.Message)
	require.Equal(t, []readmodel.ChannelView{{Name: "log", Status: readmodel.DeliverySent, Attempts: 1, SentAt: a.Channels[0].SentAt}}, a.Channels)
}

func TestNotifierIsADefaultService(t *testing.T) {
	cfg, err := standalone.LoadConfig(map[string]string{})
	require.NoError(t, err)
	require.Contains(t, cfg.Services, "notifier")

	_, err = standalone.LoadConfig(map[string]string{"NOTIFIER_MAX_ATTEMPTS": "0"})
	require.ErrorContains(t, err, "NOTIFIER_MAX_ATTEMPTS")
	_, err = standalone.LoadConfig(map[string]string{"NOTIFIER_MAX_ATTEMPTS": "0", "KILN_SERVICES": "ingest,gateway"})
	require.NoError(t, err, "the notifier's settings matter only when it runs")

	bad := filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("rules:\n  - {name: loud, match: {type: x}, channels: [slack]}\n"), 0o600))
	_, err = standalone.LoadConfig(map[string]string{"NOTIFIER_RULES_FILE": bad})
	require.ErrorContains(t, err, `rule "loud" (rules[0], line 2): channels[0]: channel "slack" is not configured`)
}
