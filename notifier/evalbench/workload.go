package evalbench

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/kilnhq/kiln/notifier/internal/rules"
	"github.com/kilnhq/kiln/schemas"
)

// Workload is a rule set and a corpus of stored envelopes (JSON, as they
// sit in the EVENTS stream) to evaluate against it.
type Workload struct {
	Rules  *rules.Set
	Events [][]byte
}

// Shape of the generated workload.
const (
	services   = 8 // event types svc<N>.<action> plus order.*, payment.failed
	users      = 1000
	corpusSize = 1 << 16
)

// actions are the second token of the generated svc<N>.<action> types.
func actions() []string { return []string{"created", "updated", "deleted", "viewed"} }

// NewWorkload builds n rules in the shapes operators write — exact types
// with metadata conditions, wildcards, per-user thresholds, and rules for
// types that never occur — and a corpus of events over 34 types, so that
// about one event in seventy decides an alert: alerts are rare, as in a real
// deployment.
func NewWorkload(n int, seed uint64) (*Workload, error) {
	return newWorkload(n, seed, corpusSize)
}

func newWorkload(n int, seed uint64, size int) (*Workload, error) {
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range n {
		svc := fmt.Sprintf("svc%d", i%services)
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
	return &Workload{Rules: set, Events: corpus(seed, size)}, nil
}

// corpus encodes size events with realistic small metadata.
func corpus(seed uint64, size int) [][]byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	types := []string{"order.created", "order.canceled", "payment.failed"}
	for s := range services {
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
			UserID: fmt.Sprintf("user-%d", rng.IntN(users)), Timestamp: 1_700_000_000_000 + int64(i),
			ReceivedAt: 1_700_000_000_000 + int64(i), Metadata: metaJSON,
		}
		out[i], _ = json.Marshal(ev)
	}
	return out
}
