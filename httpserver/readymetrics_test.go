package httpserver

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestReadinessMetrics: /metrics carries kiln_ready and, while a check
// fails, kiln_ready_dependency_down for each dependency it names (by role in
// the standalone), so the alert rules can page on a store unreachable.
func TestReadinessMetrics(t *testing.T) {
	t.Parallel()
	nats := errors.New("nats: connection closed")
	roles := func(err error) ReadyFunc {
		return RolesReady([]Role{
			{Name: "ingest", Ready: func(context.Context) error { return err }},
			{Name: "gateway", Ready: func(context.Context) error { return nil }},
		})
	}
	const (
		readyHelp = "# HELP kiln_ready 1 when every dependency of this process answers (GET /readyz is 200), else 0; checked at each scrape.\n# TYPE kiln_ready gauge\n"
		downHelp  = "# HELP kiln_ready_dependency_down 1 for each dependency (nats, mongodb, redis, ...) a readiness check found unavailable, by role; absent when it answers.\n# TYPE kiln_ready_dependency_down gauge\n"
	)
	for _, tc := range []struct {
		name  string
		ready ReadyFunc
		want  string
	}{
		{"ready", func(context.Context) error { return nil }, readyHelp + "kiln_ready 1\n"},
		{"two dependencies down", func(context.Context) error { return errors.Join(errors.New("redis: i/o timeout"), nats) },
			readyHelp + "kiln_ready 0\n" + downHelp +
				`kiln_ready_dependency_down{dependency="nats",role=""} 1` + "\n" +
				`kiln_ready_dependency_down{dependency="redis",role=""} 1` + "\n"},
		{"roles all ready", roles(nil), readyHelp + "kiln_ready 1\n"},
		{"a role's dependency down", roles(nats),
			readyHelp + "kiln_ready 0\n" + downHelp + `kiln_ready_dependency_down{dependency="nats",role="ingest"} 1` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := NewRegistry()
			NewAdminApp(reg, tc.ready, slog.New(slog.DiscardHandler))
			if err := testutil.GatherAndCompare(reg, strings.NewReader(tc.want), "kiln_ready", "kiln_ready_dependency_down"); err != nil {
				t.Fatal(err)
			}
		})
	}
}
