package evaluate_test

// BenchmarkEvaluate is the notifier_eval benchmark: stored envelopes decoded
// and evaluated against 100 rules (rules=100), against the same envelopes
// consumed with no rules (rules=0), on one goroutine as the notifier's
// consumer does. The load tool (loadtest, scenario notifier_eval) runs it
// with go test -bench and prints one JSON line from its events/s.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/notifier/internal/evaluate"
	"github.com/kilnhq/kiln/notifier/internal/rules"
	"github.com/kilnhq/kiln/schemas"
)

// Shape of the generated workload.
const (
	benchRules      = 100
	benchServices   = 8 // event types svc<N>.<action> plus order.*, payment.failed
	benchUsers      = 1000
	benchCorpusSize = 1 << 16
)

// workload is a rule set and a corpus of stored envelopes (JSON, as they sit
// in the EVENTS stream) to evaluate against it.
type workload struct {
	rules  *rules.Set
	events [][]byte
}

// benchWorkload is built once per process: a -count run reuses it.
var benchWorkload = sync.OnceValues(func() (*workload, error) {
	return newWorkload(benchRules, 1, benchCorpusSize)
})

func BenchmarkEvaluate(b *testing.B) {
	w, err := benchWorkload()
	require.NoError(b, err)
	for _, set := range []*rules.Set{nil, w.rules} {
		n := 0
		if set != nil {
			n = benchRules
		}
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			c := consumer{w: w, eng: evaluate.New(set)}
			b.ReportAllocs()
			for b.Loop() {
				if err := c.next(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(c.decisions)/float64(b.N), "decisions/event")
		})
	}
}

// TestBenchmarkWorkloadDecidesRarely: about one event in seventy decides an
// alert, as in a real deployment where alerts are rare.
func TestBenchmarkWorkloadDecidesRarely(t *testing.T) {
	t.Parallel()
	w, err := newWorkload(benchRules, 1, 4096) // a small corpus: generating it is slow under -race
	require.NoError(t, err)
	c := consumer{w: w, eng: evaluate.New(w.rules)}
	for range len(w.events) {
		require.NoError(t, c.next())
	}
	perEvent := float64(c.decisions) / float64(len(w.events))
	require.Greater(t, perEvent, 0.001, "some events decide alerts")
	require.Less(t, perEvent, 0.05, "alerts stay rare")
}

// consumer consumes the corpus in a circle, the way the notifier consumes
// messages: decode the envelope, evaluate, mark decisions stored, and prune
// old windows now and then. Timestamps advance 1ms per event, so threshold
// windows roll over as in a live stream.
type consumer struct {
	w         *workload
	eng       *evaluate.Engine
	n         int
	decisions int
	dst       []evaluate.Decision
}

func (c *consumer) next() error {
	var ev schemas.Event
	if err := json.Unmarshal(c.w.events[c.n%len(c.w.events)], &ev); err != nil {
		return fmt.Errorf("decode event: %w", err)
	}
	ev.Timestamp = 1_700_000_000_000 + int64(c.n)
	c.dst = c.eng.Evaluate(&ev, c.dst[:0])
	for _, d := range c.dst {
		c.eng.MarkDecided(d)
	}
	c.decisions += len(c.dst)
	c.n++
	if c.n%(1<<16) == 0 {
		c.eng.Prune(time.UnixMilli(ev.Timestamp))
	}
	return nil
}

// actions are the second token of the generated svc<N>.<action> types.
func actions() []string { return []string{"created", "updated", "deleted", "viewed"} }

// newWorkload builds n rules in the shapes operators write — exact types
// with metadata conditions, wildcards, per-user thresholds, and rules for
// types that never occur — and a corpus of size events over 34 types.
func newWorkload(n int, seed uint64, size int) (*workload, error) {
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range n {
		svc := fmt.Sprintf("svc%d", i%benchServices)
		act := actions()[i%len(actions())]
		switch i % 10 {
		case 0, 1, 2, 3: // exact type, numeric condition
			fmt.Fprintf(&b, "  - {name: r%d, match: {type: %s.%s, where: [{field: metadata.amount, gt: %d}]}, channels: [log]}\n", i, svc, act, 9950+i%50)
		case 4: // exact type, two conditions
			fmt.Fprintf(&b, "  - {name: r%d, match: {type: order.canceled, where: [{field: metadata.reason, in: [fraud, chargeback]}, {field: metadata.region, equals: eu-%d}, {field: metadata.amount, gt: 9500}]}, channels: [log]}\n", i, i%3)
		case 5: // wildcard type, existence and string conditions
			fmt.Fprintf(&b, "  - {name: r%d, match: {type: \"%s.*\", where: [{field: metadata.flagged, exists: true}, {field: metadata.plan, equals: pro}]}, channels: [log]}\n", i, svc)
		case 6: // threshold per user
			fmt.Fprintf(&b, "  - {name: r%d, kind: threshold, threshold: {count: 20, window: 1m, groupBy: userId}, match: {type: payment.failed}, throttle: 10m, channels: [log]}\n", i)
		case 7: // threshold per metadata value, wildcard
			fmt.Fprintf(&b, "  - {name: r%d, kind: threshold, threshold: {count: 500, window: 1m, groupBy: metadata.region}, match: {type: \"order.>\"}, channels: [log]}\n", i)
		case 8: // nested field
			fmt.Fprintf(&b, "  - {name: r%d, match: {types: [%s.%s, order.created], where: [{field: metadata.customer.tier, in: [gold, platinum]}, {field: metadata.amount, gte: 9900}]}, channels: [log]}\n", i, svc, act)
		default: // never matches a type in the corpus
			fmt.Fprintf(&b, "  - {name: r%d, match: {type: \"legacy%d.>\"}, channels: [log]}\n", i, i)
		}
	}
	set, err := rules.Parse([]byte(b.String()), rules.Options{})
	if err != nil {
		return nil, fmt.Errorf("generated rules: %w", err)
	}
	return &workload{rules: set, events: corpus(seed, size)}, nil
}

// corpus encodes size events with realistic small metadata.
func corpus(seed uint64, size int) [][]byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	types := []string{"order.created", "order.canceled", "payment.failed"}
	for s := range benchServices {
		for _, a := range actions() {
			types = append(types, fmt.Sprintf("svc%d.%s", s, a))
		}
	}
	out := make([][]byte, size)
	for i := range out {
		meta := map[string]any{
			"amount": rng.IntN(10_000), "currency": "EUR", "plan": []string{"free", "pro"}[rng.IntN(2)],
			"region":   fmt.Sprintf("eu-%d", rng.IntN(3)),
			"reason":   []string{"customer", "fraud", "stock", "chargeback"}[rng.IntN(4)],
			"customer": map[string]any{"tier": []string{"basic", "gold", "platinum"}[rng.IntN(3)], "since": 2019 + rng.IntN(6)},
		}
		if rng.IntN(100) == 0 {
			meta["flagged"] = true
		}
		metaJSON, _ := json.Marshal(meta)
		ev := schemas.Event{
			ID: fmt.Sprintf("01JBENCH%018d", i), EventType: types[rng.IntN(len(types))],
			UserID: fmt.Sprintf("user-%d", rng.IntN(benchUsers)), Timestamp: 1_700_000_000_000 + int64(i),
			ReceivedAt: 1_700_000_000_000 + int64(i), Metadata: metaJSON,
		}
		out[i], _ = json.Marshal(ev)
	}
	return out
}
