package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/testsupport"
)

// scaleRoles are the roles the measurement runs one and then two of.
var scaleRoles = []string{"ingest", "projector", "gateway"}

// TestScaleOneVsTwoInstances measures (issue 25 item 4) what one and two
// instances of ingest, the projector and the gateway each do with the same
// offered work: the share each instance handles, its CPU seconds (utime +
// stime from /proc) per 1,000 events, and for the projectors whether one
// idled while the stream had work for it. It offers KILN_SCALE_EVENTS
// events (default 20,000) in batches of 100 spread round-robin over the
// ingest instances, waits until every projection has applied them, then
// sends KILN_SCALE_READS reads (default 2,000: GET /events and /metrics)
// spread over the gateways. One JSON line per instance and per role.
//
//	KILN_SCALE=1 go test -run TestScaleOneVsTwoInstances -v -timeout 30m ./faults/
func TestScaleOneVsTwoInstances(t *testing.T) {
	if os.Getenv("KILN_SCALE") == "" {
		t.Skip("KILN_SCALE=1 runs the one-vs-two-instances measurement")
	}
	events, reads := envInt(t, "KILN_SCALE_EVENTS", 20000), envInt(t, "KILN_SCALE_READS", 2000)
	for _, n := range []int{1, 2} {
		t.Run(fmt.Sprintf("instances=%d", n), func(t *testing.T) { measureScale(t, n, events, reads) })
	}
}

func envInt(t *testing.T, k string, def int) int {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, k)
	return n
}

// scaleLine is one JSON line of the measurement.
type scaleLine struct {
	Bench     string  `json:"bench"`
	Instances int     `json:"instances"`
	Role      string  `json:"role"`
	Instance  int     `json:"instance,omitempty"` // 0 on a role's total line
	Unit      string  `json:"unit"`               // what handled counts
	Handled   float64 `json:"handled"`
	Share     float64 `json:"share"`
	CPUSecs   float64 `json:"cpu_s"`
	CPUPer1k  float64 `json:"cpu_s_per_1k"`
	WallSecs  float64 `json:"wall_s,omitempty"`
	// projector only: sampling intervals (250 ms) in which the stream
	// had work not yet handed out and this instance applied nothing while
	// another applied some, out of the intervals with such a backlog.
	IdleIntervals    *int    `json:"idle_intervals,omitempty"`
	BacklogIntervals *int    `json:"backlog_intervals,omitempty"`
	Load1            float64 `json:"load1"`
}

func measureScale(t *testing.T, n, events, reads int) {
	ns := testsupport.StartNATS(t)
	m := testsupport.StartMongo(t)
	db := m.Database(t)
	rs := testsupport.StartRedis(t)
	stores := map[string]string{"NATS_URL": ns.URL(), "MONGO_URI": m.URI(), "MONGO_DATABASE": db.Name(),
		"REDIS_URL": rs.URL(), "LOG_LEVEL": "warn"}
	roles := map[string][]*role{}
	for _, name := range scaleRoles {
		for i := range n {
			r := newRole(t, name, name != "projector", stores)
			r.running = newCommand(t, fmt.Sprintf("%s-%d", name, i+1), bin(t, "kiln"), []string{"serve", name}, r.env)
			roles[name] = append(roles[name], r)
		}
	}
	// ingest first: it creates the stream the others wait for
	for _, name := range scaleRoles {
		for _, r := range roles[name] {
			r.running.start()
			waitReady(t, "http://"+r.admin+"/readyz")
		}
	}
	js := ns.JetStream(t)
	ctx := context.Background()

	cpu0 := map[*role]float64{}
	for _, name := range scaleRoles {
		for _, r := range roles[name] {
			cpu0[r] = cpuSeconds(t, r.running.pid())
		}
	}
	load := load1()
	start := time.Now()
	stopSampling := sampleProjectors(t, js, roles["projector"])
	offer(t, roles["ingest"], events)
	offered := time.Since(start)
	require.Eventually(t, func() bool { return projected(ctx, js) }, 10*time.Minute, 100*time.Millisecond,
		"every projection applied every event")
	wall := time.Since(start)
	idle, backlog := stopSampling()

	lines := []scaleLine{}
	add := func(role, unit string, rs []*role, handled []float64, cpu []float64, wall time.Duration) {
		var sumH, sumC float64
		for i := range rs {
			sumH += handled[i]
			sumC += cpu[i]
		}
		for i := range rs {
			l := scaleLine{Bench: "scale", Instances: n, Role: role, Instance: i + 1, Unit: unit,
				Handled: handled[i], Share: round(handled[i] / sumH), CPUSecs: round(cpu[i]),
				CPUPer1k: round(cpu[i] / handled[i] * 1000), Load1: load}
			if role == "projector" {
				l.IdleIntervals, l.BacklogIntervals = &idle[i], &backlog
			}
			lines = append(lines, l)
		}
		lines = append(lines, scaleLine{Bench: "scale", Instances: n, Role: role, Unit: unit, Handled: sumH, Share: 1,
			CPUSecs: round(sumC), CPUPer1k: round(sumC / sumH * 1000), WallSecs: round(wall.Seconds()), Load1: load})
	}
	handledCPU := func(rs []*role, metric string) (handled, cpu []float64) {
		for _, r := range rs {
			v, ok := promSum("http://"+r.admin+"/metrics", metric)
			require.True(t, ok, "%s metrics", r.name)
			handled = append(handled, v)
			cpu = append(cpu, cpuSeconds(t, r.running.pid())-cpu0[r])
		}
		return handled, cpu
	}
	h, c := handledCPU(roles["ingest"], "kiln_ingest_events_accepted_total")
	add("ingest", "events", roles["ingest"], h, c, offered)
	h, c = handledCPU(roles["projector"], "kiln_projector_events_applied_total")
	var applied float64
	for _, v := range h {
		applied += v
	}
	perEvent := applied / float64(events) // projections each event goes through
	for i := range h {
		h[i] /= perEvent
	}
	add("projector", "events", roles["projector"], h, c, wall)

	for _, r := range roles["gateway"] {
		cpu0[r] = cpuSeconds(t, r.running.pid())
	}
	start = time.Now()
	read(t, roles["gateway"], reads)
	h, c = handledCPU(roles["gateway"], "kiln_gateway_requests_total")
	add("gateway", "requests", roles["gateway"], h, c, time.Since(start))

	for _, l := range lines {
		b, err := json.Marshal(l)
		require.NoError(t, err)
		fmt.Println(string(b))
		t.Log(string(b))
	}
}

func round(f float64) float64 { return float64(int64(f*10000+0.5)) / 10000 }

// offer posts events in batches of 100 from 4 writers, batch i to ingest
// instance i mod n, each until it is answered 202.
func offer(t *testing.T, ingest []*role, events int) {
	t.Helper()
	const batch, writers = 100, 4
	client := &http.Client{Timeout: time.Minute}
	next := make(chan int)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for b := range next {
				var evs []map[string]any
				for i := b * batch; i < min((b+1)*batch, events); i++ {
					evs = append(evs, map[string]any{"id": fmt.Sprintf("sc-%07d", i), "eventType": eventTypes[i%len(eventTypes)],
						"userId": fmt.Sprintf("u%d", i%97), "timestamp": time.Now().UnixMilli(), "metadata": map[string]any{"n": i}})
				}
				body, _ := json.Marshal(evs)
				url := "http://" + ingest[b%len(ingest)].addr + "/events"
				ok := assertEventually(5*time.Minute, func() bool {
					resp, err := client.Post(url, "application/json", bytes.NewReader(body))
					if err != nil {
						return false
					}
					_ = resp.Body.Close()
					return resp.StatusCode == http.StatusAccepted
				})
				if !ok {
					t.Errorf("batch %d never accepted by %s", b, url)
				}
			}
		})
	}
	for b := 0; b*batch < events; b++ {
		next <- b
	}
	close(next)
	wg.Wait()
}

// read sends reads GETs spread round-robin over the gateways, from 4
// clients, alternating the history and the counters.
func read(t *testing.T, gateways []*role, reads int) {
	t.Helper()
	client := &http.Client{Timeout: time.Minute}
	next := make(chan int)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range next {
				path := "/events?limit=50"
				if i%2 == 1 {
					path = "/metrics"
				}
				resp, err := client.Get("http://" + gateways[i%len(gateways)].addr + path)
				if err != nil {
					t.Errorf("GET %s: %v", path, err)
					continue
				}
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET %s: %d", path, resp.StatusCode)
				}
			}
		})
	}
	for i := range reads {
		next <- i
	}
	close(next)
	wg.Wait()
}

// projected reports whether every projector consumer has acked the whole
// stream.
func projected(ctx context.Context, js jetstream.JetStream) bool {
	stream, err := js.Stream(ctx, schemas.StreamName)
	if err != nil {
		return false
	}
	last := stream.CachedInfo().State.LastSeq
	names := stream.ConsumerNames(ctx)
	seen := 0
	for name := range names.Name() {
		if !strings.HasPrefix(name, "projector-") {
			continue
		}
		c, err := stream.Consumer(ctx, name)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		if err != nil || info.NumPending > 0 || info.NumAckPending > 0 || info.AckFloor.Stream < last {
			return false
		}
		seen++
	}
	return seen > 0 && names.Err() == nil
}

// sampleProjectors samples, every 250 ms, each projector's applied count
// and whether some projector consumer had messages not yet handed out;
// stop returns, per instance, the intervals with such a backlog in which
// it applied nothing while another applied some, and the number of
// intervals with a backlog.
func sampleProjectors(t *testing.T, js jetstream.JetStream, projectors []*role) (stop func() (idle []int, backlog int)) {
	done := make(chan struct{})
	finished := make(chan struct{})
	idle := make([]int, len(projectors))
	backlog := 0
	applied := func() []float64 {
		out := make([]float64, len(projectors))
		for i, r := range projectors {
			out[i], _ = promSum("http://"+r.admin+"/metrics", "kiln_projector_events_applied_total")
		}
		return out
	}
	pending := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stream, err := js.Stream(ctx, schemas.StreamName)
		if err != nil {
			return false
		}
		names := stream.ConsumerNames(ctx)
		has := false
		for name := range names.Name() {
			if !strings.HasPrefix(name, "projector-") {
				continue
			}
			if c, err := stream.Consumer(ctx, name); err == nil {
				if info, err := c.Info(ctx); err == nil && info.NumPending > 0 {
					has = true
				}
			}
		}
		return has
	}
	go func() {
		defer close(finished)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		prev, behind := applied(), pending()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			cur := applied()
			if behind && len(projectors) > 1 {
				backlog++
				for i := range cur {
					others := false
					for j := range cur {
						others = others || (j != i && cur[j] > prev[j])
					}
					if cur[i] == prev[i] && others {
						idle[i]++
					}
				}
			}
			prev, behind = cur, pending()
		}
	}()
	return func() ([]int, int) {
		close(done)
		<-finished
		return idle, backlog
	}
}

// cpuSeconds is a process's user + system CPU time so far.
func cpuSeconds(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, err := strconv.ParseFloat(f[11], 64)
	require.NoError(t, err)
	stime, err := strconv.ParseFloat(f[12], 64)
	require.NoError(t, err)
	return (utime + stime) / 100 // USER_HZ is 100 on Linux
}

func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return v
}
