package deployments

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kilnhq/kiln/app/standalone/standalonetest"
	kilnv1 "github.com/kilnhq/kiln/realtime/gen/kiln/v1"
	"github.com/kilnhq/kiln/testsupport"
)

// monitoringDir holds the Prometheus configuration, the alert rules and
// their tests, and Grafana's provisioning and dashboard.
const monitoringDir = "monitoring"

// promtool is Debian's prometheus package's promtool. make test installs it
// (scripts/install-test-deps); a machine without it fails these tests, as
// one without redis-server fails the stores' tests.
func promtool(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found on PATH (%v); make test installs it (scripts/install-test-deps), or `apt-get install prometheus`", err)
	}
	return bin
}

func runPromtool(t *testing.T, stdin []byte, args ...string) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = monitoringDir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
}

// alertRules is the part of alerts.yml the tests read.
type alertRules struct {
	Groups []struct {
		Rules []struct {
			Alert string `yaml:"alert"`
			Expr  string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func loadAlerts(t *testing.T) alertRules {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(monitoringDir, "alerts.yml"))
	require.NoError(t, err)
	var r alertRules
	require.NoError(t, yaml.Unmarshal(b, &r), "alerts.yml")
	require.NotEmpty(t, r.Groups)
	return r
}

func (r alertRules) names() []string {
	var out []string
	for _, g := range r.Groups {
		for _, rule := range g.Rules {
			if !slices.Contains(out, rule.Alert) {
				out = append(out, rule.Alert)
			}
		}
	}
	return out
}

// TestAlertRules: the rules and the Prometheus configuration are valid,
// promtool's unit tests (alerts_test.yml) cover every alert, and
// docs/operations.md says what each means and what to do first.
func TestAlertRules(t *testing.T) {
	t.Parallel()
	runPromtool(t, nil, "check", "rules", "alerts.yml")
	runPromtool(t, nil, "check", "config", "prometheus.yml")
	runPromtool(t, nil, "test", "rules", "alerts_test.yml")

	b, err := os.ReadFile(filepath.Join(monitoringDir, "alerts_test.yml"))
	require.NoError(t, err)
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	require.NoError(t, yaml.Unmarshal(b, &tests), "alerts_test.yml")
	fired := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fired[a.Alertname] = true
			}
		}
	}
	ops, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
	require.NoError(t, err)
	for _, name := range loadAlerts(t).names() {
		require.True(t, fired[name], "alerts_test.yml has no test in which %s fires", name)
		require.Contains(t, string(ops), "- **"+name+"**", "docs/operations.md, Monitoring, has no paragraph on %s", name)
	}
}

// TestPrometheusScrapesEveryRole: prometheus.yml has one job per Kiln role
// of docker-compose.yml, on the port of the role's admin listener.
func TestPrometheusScrapesEveryRole(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(monitoringDir, "prometheus.yml"))
	require.NoError(t, err)
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName      string `yaml:"job_name"`
			DNSSDConfigs []struct {
				Names []string `yaml:"names"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	require.NoError(t, yaml.Unmarshal(b, &cfg), "prometheus.yml")
	require.Equal(t, []string{"alerts.yml"}, cfg.RuleFiles)
	jobs := map[string]string{} // service → host:port scraped
	for _, sc := range cfg.ScrapeConfigs {
		require.Len(t, sc.DNSSDConfigs, 1, sc.JobName)
		d := sc.DNSSDConfigs[0]
		require.Len(t, d.Names, 1, sc.JobName)
		require.Equal(t, "kiln-"+d.Names[0], sc.JobName, "job names are kiln-<service> (the alert rules match job=~\"kiln.*\")")
		jobs[d.Names[0]] = ":" + strconv.Itoa(d.Port)
	}

	c := loadCompose(t)
	want := map[string]string{}
	for name, s := range c.Services {
		if v, ok := s.Environment[strings.ToUpper(name)+"_ADMIN_ADDR"]; ok {
			want[name] = v.(string)
		}
	}
	require.Equal(t, want, jobs, "prometheus.yml's jobs against the compose services' <SERVICE>_ADMIN_ADDR")

	prom, graf := c.Services["prometheus"], c.Services["grafana"]
	require.Equal(t, []string{"monitoring"}, prom.Profiles)
	require.Equal(t, []string{"monitoring"}, graf.Profiles)
	require.Contains(t, prom.Volumes, "./deployments/monitoring:/etc/prometheus:ro")
	require.Contains(t, graf.Volumes, "./deployments/monitoring/grafana/provisioning:/etc/grafana/provisioning:ro")
	require.Contains(t, graf.Volumes, "./deployments/monitoring/grafana/kiln.json:/etc/grafana/dashboards/kiln.json:ro")

	// The dashboard's panels use the provisioned data source.
	b, err = os.ReadFile(filepath.Join(monitoringDir, "grafana", "provisioning", "datasources", "prometheus.yml"))
	require.NoError(t, err)
	var ds struct {
		Datasources []struct {
			UID string `yaml:"uid"`
			URL string `yaml:"url"`
		} `yaml:"datasources"`
	}
	require.NoError(t, yaml.Unmarshal(b, &ds))
	require.Len(t, ds.Datasources, 1)
	require.Equal(t, "http://prometheus:9090", ds.Datasources[0].URL)
	for _, p := range dashboardPanels(t) {
		if p.Type == "row" {
			continue
		}
		require.Equal(t, ds.Datasources[0].UID, p.Datasource.UID, "panel %q", p.Title)
		require.NotEmpty(t, p.Targets, "panel %q", p.Title)
	}
}

type panel struct {
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

func dashboardPanels(t *testing.T) []panel {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(monitoringDir, "grafana", "kiln.json"))
	require.NoError(t, err)
	var d struct {
		Panels []panel `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(b, &d), "grafana/kiln.json")
	require.NotEmpty(t, d.Panels)
	return d.Panels
}

var metricName = regexp.MustCompile(`\bkiln_[a-z0-9_]+`)

// referencedMetrics lists every kiln_ metric the alert rules and the
// dashboard query, with where.
func referencedMetrics(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, g := range loadAlerts(t).Groups {
		for _, r := range g.Rules {
			for _, m := range metricName.FindAllString(r.Expr, -1) {
				out[m] = "alerts.yml " + r.Alert
			}
		}
	}
	for _, p := range dashboardPanels(t) {
		for _, tg := range p.Targets {
			for _, m := range metricName.FindAllString(tg.Expr, -1) {
				out[m] = "grafana/kiln.json panel " + strconv.Quote(p.Title)
			}
		}
	}
	return out
}

// TestMonitoringMetricsExist scrapes a live standalone's admin /metrics
// after some traffic (events posted, read, a gRPC call): promtool check
// metrics passes, and every metric the alert rules and the dashboard query
// is served, so they cannot drift from the code. Then Redis stops answering
// and the scrape names it as a dependency down.
func TestMonitoringMetricsExist(t *testing.T) {
	t.Parallel()
	refs := referencedMetrics(t)
	require.NotEmpty(t, refs)
	adminPort := strconv.Itoa(testsupport.FreePort(t))
	kiln := standalonetest.Start(t, t.TempDir(), "ADMIN_PORT", adminPort)

	resp, err := http.Post(kiln.Base+"/events", "application/json",
		strings.NewReader(`{"eventType":"page_view","userId":"u1","timestamp":1700000000}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	resp, err = http.Get(kiln.Base + "/events")
	require.NoError(t, err)
	resp.Body.Close()

	conn, err := grpc.NewClient(kiln.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, _ = kilnv1.NewEventServiceClient(conn).Publish(ctx, &kilnv1.PublishRequest{}) // any answer is counted

	var scrape []byte
	var missing []string
	found := assert.Eventually(t, func() bool {
		resp, err := http.Get("http://127.0.0.1:" + adminPort + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if scrape, err = io.ReadAll(resp.Body); err != nil {
			return false
		}
		served := map[string]bool{}
		for line := range strings.Lines(string(scrape)) {
			if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
				line = rest
			} else if strings.HasPrefix(line, "#") {
				continue
			}
			if i := strings.IndexAny(line, "{ "); i > 0 {
				served[line[:i]] = true
			}
		}
		missing = missing[:0]
		for m, where := range refs {
			// kiln_ready_dependency_down is served while a dependency is down: below.
			if !served[m] && m != "kiln_ready_dependency_down" {
				missing = append(missing, m+" ("+where+")")
			}
		}
		return len(missing) == 0
	}, 3*time.Minute, 500*time.Millisecond)
	if !found {
		slices.Sort(missing)
		t.Fatalf("not in the standalone's /metrics:\n%s", strings.Join(missing, "\n"))
	}
	runPromtool(t, scrape, "check", "metrics")

	// Redis stops answering (CLIENT PAUSE): readiness reports it, by name.
	u, err := url.Parse(kiln.RedisURL)
	require.NoError(t, err)
	rc, err := net.Dial("tcp", u.Host)
	require.NoError(t, err)
	defer rc.Close()
	_, err = rc.Write([]byte("CLIENT PAUSE 30000 ALL\r\n"))
	require.NoError(t, err)
	reply, err := bufio.NewReader(rc).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "+OK\r\n", reply)
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://127.0.0.1:" + adminPort + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return err == nil && strings.Contains(string(b), "\nkiln_ready 0\n") &&
			regexp.MustCompile(`\nkiln_ready_dependency_down\{dependency="redis",role="[a-z]+"\} 1\n`).Match(b)
	}, 3*time.Minute, 500*time.Millisecond, "kiln_ready_dependency_down{dependency=\"redis\"} while Redis is paused")
}
