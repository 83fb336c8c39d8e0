package faults

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/testsupport"
)

// previousRelease is the release the upgrade test starts from, built from
// this repository's own history (git archive, then go build in that tree
// with its go.work). It is the last landed build. To bump it when a
// release ships, set it to that release's tag or commit hash and run
// make test-upgrade; a checkout without the commit (a shallow clone: git
// fetch --unshallow) skips the test.
const previousRelease = "1b4367e"

// extract writes the tree of commit rev of the repository at root into dir
// (git archive | tar -x) and returns dir.
func extract(root, rev, dir string) (string, error) {
	archive, err := exec.Command("git", "-C", root, "archive", rev).Output()
	if err != nil {
		return "", fmt.Errorf("git archive %s: %w", rev, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	untar := exec.Command("tar", "-x", "-C", dir)
	untar.Stdin = bytes.NewReader(archive)
	if out, err := untar.CombinedOutput(); err != nil {
		return "", fmt.Errorf("tar -x %s: %v\n%s", rev, err, out)
	}
	return dir, nil
}

// Alerts and webhooks under the upgrade: the notifier alerts on every
// event of alertType, the webhook endpoint subscribes to hookType (two of
// the workload's three types).
const (
	alertType = "fault.c"
	hookType  = "fault.b"
)

// Upgrades under traffic (issue 26 item 3): the previous release's kiln
// runs with a workload of acknowledged events; its roles are replaced by
// this tree's build one at a time (SIGTERM, start, admin /readyz) while the
// workload goes on — in pipeline order, in reverse, and with the projector
// replaced through a kiln replay all (the layout-change procedure) — then
// a standalone is replaced all at once on the same KILN_DATA_DIR and
// replayed. Each ends with every read model equal to the acked ids, no
// alert sent twice and every webhook delivered (at least once: duplicates
// are counted and logged). make test-upgrade runs it.
func TestUpgrade(t *testing.T) {
	if os.Getenv("KILN_UPGRADE") == "" {
		t.Skip("make test-upgrade (KILN_UPGRADE=1): the previous release's kiln replaced by this build under traffic")
	}
	root, err := repoRoot()
	require.NoError(t, err)
	if out, err := exec.Command("git", "-C", root, "cat-file", "-e", previousRelease+"^{commit}").CombinedOutput(); err != nil {
		t.Skipf("the previous release, commit %s (previousRelease), is not in this checkout (a shallow clone? git fetch --unshallow): %v %s",
			previousRelease, err, out)
	}
	started := time.Now()
	prev, cur := bin(t, "kiln-previous"), bin(t, "kiln")
	t.Logf("built %s and the working tree in %s", previousRelease, time.Since(started).Round(time.Second))
	t.Run("roles one at a time", func(t *testing.T) {
		upgradeRoles(t, prev, cur, []string{"ingest", "projector", "notifier", "gateway", "webhooks", "realtime"}, stopStart)
	})
	t.Run("roles one at a time, reverse order", func(t *testing.T) {
		upgradeRoles(t, prev, cur, []string{"realtime", "webhooks", "gateway", "notifier", "projector", "ingest"}, stopStart)
	})
	// The procedure docs/operations.md gives for a release that changes a
	// read model's layout: the projector is stopped, this build's kiln
	// replay all fills a new generation and switches, then this build's
	// projector starts, then the gateway.
	t.Run("roles one at a time, projector through a replay", func(t *testing.T) {
		upgradeRoles(t, prev, cur, []string{"ingest", "notifier", "webhooks", "realtime", "projector", "gateway"}, replay)
	})
	// A rolling update (Kubernetes' default surge) runs both versions side
	// by side for a moment; the roles without the test's clients on them
	// start beside the old process.
	t.Run("roles side by side", func(t *testing.T) {
		upgradeRoles(t, prev, cur, []string{"projector", "webhooks", "realtime", "ingest", "notifier", "gateway"}, surge)
	})
	t.Run("standalone all at once", func(t *testing.T) { upgradeStandalone(t, prev, cur) })
}

// role is one `kiln serve <role>` of the split deployment; run replaces
// its process by one of another binary.
type role struct {
	name, addr, admin string // addr: the public listener, "" for none
	env               map[string]string
	running           *proc
}

func newRole(t *testing.T, name string, public bool, stores map[string]string, extra ...string) *role {
	r := &role{name: name, admin: free(t), env: map[string]string{}}
	prefix := strings.ToUpper(name)
	for k, v := range stores {
		r.env[k] = v
	}
	r.env[prefix+"_ADMIN_ADDR"] = r.admin
	if public {
		r.addr = free(t)
		r.env[prefix+"_ADDR"] = r.addr
	}
	for i := 0; i+1 < len(extra); i += 2 {
		r.env[extra[i]] = extra[i+1]
	}
	return r
}

// run stops the role's process (SIGTERM: it drains) and starts path in its
// place, on the same addresses, and waits for its admin /readyz.
func (r *role) run(t *testing.T, version, path string) time.Duration {
	t.Helper()
	start := time.Now()
	if r.running != nil {
		r.running.stop()
	}
	r.running = newCommand(t, r.name+"-"+version, path, []string{"serve", r.name}, r.env)
	r.running.start()
	waitReady(t, "http://"+r.admin+"/readyz")
	return time.Since(start)
}

// surge starts path beside the role's process, on addresses of its own,
// waits for its /readyz and for meanwhile, then stops the old one
// (SIGTERM): a rolling update's overlap, both versions on the same
// consumers for a while.
func (r *role) surge(t *testing.T, version, path string, meanwhile func()) {
	t.Helper()
	old := r.running
	r.env = maps.Clone(r.env)
	for k := range r.env {
		if strings.HasSuffix(k, "_ADDR") {
			r.env[k] = free(t)
		}
	}
	prefix := strings.ToUpper(r.name)
	r.admin = r.env[prefix+"_ADMIN_ADDR"]
	if r.addr != "" {
		r.addr = r.env[prefix+"_ADDR"]
	}
	r.running = nil
	r.run(t, version, path)
	meanwhile()
	old.stop()
}

// swap is how upgradeRoles replaces a role.
type swap int

const (
	stopStart swap = iota // every role: SIGTERM the old, start the new on its addresses
	replay                // the same, but the projector: stop, kiln replay all (this build), start
	surge                 // the projector, webhooks and realtime: the new beside the old, then the old stopped
)

// The split deployment: NATS, FerretDB and redis-server shared, the six
// roles as processes of the previous release, replaced one by one in
// order, each as how says.
func upgradeRoles(t *testing.T, prev, cur string, order []string, how swap) {
	ns := testsupport.StartNATS(t)
	m := testsupport.StartMongo(t)
	db := m.Database(t)
	rs := testsupport.StartRedis(t)
	slack, hooks := startSlackReceiver(t), startHookReceiver(t)
	stores := map[string]string{"NATS_URL": ns.URL(), "MONGO_URI": m.URI(), "MONGO_DATABASE": db.Name(),
		"REDIS_URL": rs.URL(), "LOG_LEVEL": "warn"}
	ingest := newRole(t, "ingest", true, stores)
	projector := newRole(t, "projector", false, stores)
	gateway := newRole(t, "gateway", true, stores)
	webhooks := newRole(t, "webhooks", true, stores, "WEBHOOKS_ALLOW_NETWORKS", "127.0.0.0/8")
	roles := []*role{ingest, projector,
		newRole(t, "notifier", false, stores, "NOTIFIER_RULES_FILE", rulesFile(t), "SLACK_WEBHOOK_URL", slack.URL),
		gateway,
		webhooks,
		newRole(t, "realtime", true, stores, "GRPC_ADDR", free(t)), // started and replaced; no traffic of its own
	}
	for _, r := range roles {
		r.run(t, "previous", prev)
	}
	createEndpoint(t, "http://"+webhooks.addr, hooks)
	ingestURL := "http://" + ingest.addr
	probes := probe(t, ingestURL, slack, hooks)

	w := startWorkload(t, ingestURL, 2, 10*time.Millisecond)
	waitAcked(t, w, 200)
	var swaps []string
	for _, name := range order {
		i := slices.IndexFunc(roles, func(r *role) bool { return r.name == name })
		require.GreaterOrEqual(t, i, 0, "no role %s", name)
		r := roles[i]
		start := time.Now()
		switch {
		case how == replay && r == projector:
			r.running.stop()
			replayAll(t, cur, stores)
			r.run(t, "current", cur)
		case how == surge && (r == projector || r.name == "webhooks" || r.name == "realtime"):
			r.surge(t, "current", cur, func() { waitAcked(t, w, w.ackedCount()+150) })
		default:
			r.run(t, "current", cur)
		}
		took := time.Since(start)
		swaps = append(swaps, fmt.Sprintf("%s %.1fs at %d acked", r.name, took.Seconds(), w.ackedCount()))
		waitAcked(t, w, w.ackedCount()+200) // traffic through the new role before the next swap
	}
	stopped := time.Now()
	w.finish()
	acked := merged(probes.ackedIDs(), w.ackedIDs())

	p := &pipeline{t: t, nats: ns, db: db, redisAddr: rs.Addr(), rdb: rs.Client(t), projAdmin: projector.admin}
	seen, settled := p.settle(t, acked, settleWithin)
	// Redelivered to this build's projector: messages an old process was
	// handed and did not ack, back after PROJECTOR_ACK_WAIT.
	redelivered, _ := promSum("http://"+projector.admin+"/metrics", "kiln_projector_redeliveries_total")
	t.Logf("this build's projector was redelivered %.0f messages", redelivered)
	listed := settleAPI(t, "http://"+gateway.addr, acked)
	d := checkDeliveries(t, "http://"+gateway.addr, w.ackedIDs(), slack, hooks)
	name := "roles in turn: " + strings.Join(order, ", ")
	switch how {
	case replay:
		name += " (projector through kiln replay all)"
	case surge:
		name += " (projector, webhooks, realtime: new beside old)"
	}
	upgradeReport(t, name, len(acked), w.retries, seen, listed, d, settled, time.Since(stopped), swaps)
}

// The standalone: the previous release's kiln run on a data folder,
// stopped (SIGTERM) under traffic and this build's started on the same
// folder; the clients retry through the gap with their ids.
func upgradeStandalone(t *testing.T, prev, cur string) {
	slack, hooks := startSlackReceiver(t), startHookReceiver(t)
	port, admin := portOf(t), portOf(t)
	env := map[string]string{
		"KILN_DATA_DIR": t.TempDir(), "PORT": port, "ADMIN_PORT": admin, "NATS_PORT": portOf(t),
		"MONGO_PORT": portOf(t), "GRPC_ADDR": free(t), "LOG_LEVEL": "warn",
		"NOTIFIER_RULES_FILE": rulesFile(t), "SLACK_WEBHOOK_URL": slack.URL, "WEBHOOKS_ALLOW_NETWORKS": "127.0.0.0/8",
	}
	base := "http://127.0.0.1:" + port
	old := newCommand(t, "standalone-previous", prev, []string{"run"}, env)
	old.start()
	waitReady(t, "http://127.0.0.1:"+admin+"/readyz")
	createEndpoint(t, base, hooks)
	probes := probe(t, base, slack, hooks)

	w := startWorkload(t, base, 2, 10*time.Millisecond)
	waitAcked(t, w, 300)
	start := time.Now()
	old.stop()
	stoppedAt := w.ackedCount()
	next := newCommand(t, "standalone-current", cur, []string{"run"}, env)
	next.start()
	waitReady(t, "http://127.0.0.1:"+admin+"/readyz")
	swap := fmt.Sprintf("standalone %.1fs at %d acked", time.Since(start).Seconds(), stoppedAt)
	waitAcked(t, w, w.ackedCount()+150)
	// A release that changes a layout is then replayed, under traffic
	// (docs/operations.md, Upgrades); the command finds the standalone
	// through its data folder.
	replayAll(t, cur, map[string]string{"KILN_DATA_DIR": env["KILN_DATA_DIR"]})
	waitAcked(t, w, w.ackedCount()+150)
	stopped := time.Now()
	w.finish()
	acked := merged(probes.ackedIDs(), w.ackedIDs())

	listed := settleAPI(t, base, acked)
	settled := time.Since(stopped)
	d := checkDeliveries(t, base, w.ackedIDs(), slack, hooks)
	seen := observed{history: listed, counters: listed, recent: -1} // read through the API, see settleAPI
	upgradeReport(t, "standalone all at once", len(acked), w.retries, seen, listed, d, settled, time.Since(stopped), []string{swap})
}

// replayAll runs this build's kiln replay all against the stores in env
// (or the standalone of KILN_DATA_DIR) and logs what it printed last.
func replayAll(t *testing.T, kiln string, env map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kiln, "replay", "all", "--yes", "--grace", "1s")
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "kiln replay all:\n%s", out)
	t.Logf("kiln replay all took %s; its last lines:\n%s", time.Since(start).Round(time.Millisecond), tail(out, 600))
}

// rulesFile is the notifier's rules: one alert per event of alertType,
// its message the event's id.
func rulesFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "rules.yaml")
	rules := "rules:\n  - {name: upgrade-each, match: {type: " + alertType + "}, channels: [slack], message: \"{{.EventID}}\"}\n"
	require.NoError(t, os.WriteFile(p, []byte(rules), 0o600))
	return p
}

func merged(a, b map[string]string) map[string]string {
	out := make(map[string]string, len(a)+len(b))
	for _, m := range []map[string]string{a, b} {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// upgradeReport prints one upgrade's figures as a JSON line and logs them:
// settled is from the workload's end to the read models equal to the acked
// ids, checked from then to every check done (the checks' own reads
// included).
func upgradeReport(t *testing.T, name string, acked, retries int, seen observed, listed int, d deliveries,
	settled, checked time.Duration, swaps []string) {
	line := fmt.Sprintf(`{"upgrade":%q,"from":%q,"acked":%d,"client_retries":%d,"history":%d,"counters":%d,"recent":%d,"api_events":%d,`+
		`"alerts":%d,"alerts_twice":%d,"webhook_events":%d,"webhook_deliveries":%d,"webhook_duplicates":%d,"settled_s":%.1f,"checked_s":%.1f,"swaps":%s}`,
		name, previousRelease, acked, retries, seen.history, seen.counters, seen.recent, listed,
		d.alerts, d.alertsTwice, d.hookEvents, d.hookRequests, d.hookDuplicates, settled.Seconds(), checked.Seconds(),
		strconv.Quote(strings.Join(swaps, "; ")))
	fmt.Println(line)
	t.Log(line)
}
