package evaluate

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/kilnhq/kiln/notifier/internal/rules"
	"github.com/kilnhq/kiln/schemas"
)

// fuzzEvents are what every compiled fuzzed rule set is evaluated on.
func fuzzEvents() []schemas.Event {
	meta := []string{`{}`, `{"amount":1500.5,"currency":"EUR","id":"o-1"}`, `{"reason":"card","nested":{"a":[1,2]}}`,
		`{"amount":"1e400","coupon":null,"x":{"y":{"z":true}}}`}
	types := []string{"order.created", "payment.failed", "page_view", "a.b.c"}
	var out []schemas.Event
	for i, typ := range types {
		out = append(out, schemas.Event{ID: "e" + typ, EventType: typ, UserID: "u1", Timestamp: 1_700_000_000_000 + int64(i),
			Metadata: json.RawMessage(meta[i%len(meta)])})
	}
	return out
}

// FuzzRuleSpecs: any rules document either compiles or is refused with
// errors; a compiled set evaluates and observes events without panicking,
// and only decides for rules of its own.
func FuzzRuleSpecs(f *testing.F) {
	if example, err := os.ReadFile("../../rules.example.yaml"); err == nil {
		if i := bytes.Index(example, []byte("\nrules:")); i >= 0 {
			example = example[i+1:] // without the comment block: small inputs mutate faster
		}
		f.Add(example)
	}
	for _, seed := range []string{
		`rules: [{name: a, match: {type: "order.*"}, channels: [log]}]`,
		`{"rules":[{"name":"t","match":{"types":["payment.>"],"where":[{"field":"metadata.amount","gt":10}]},"kind":"threshold","threshold":{"count":1,"window":"1s","groupBy":"userId"},"channels":["slack"]}]}`,
		`rules: [{name: w, match: {type: ">", where: [{field: metadata.x.y.z, exists: true}, {field: userId, in: [u1, u2]}]}, throttle: 1m, dedupe: "{{.UserID}}", message: "{{.Metadata.amount}}"}]`,
		`rules: [{name: bad name, match: {}, kind: sometimes, channels: [pager]}]`,
		`rules: [{name: x, match: {type: a}}, {name: x, match: {type: a}}]`,
		"rules:\n  - name: t\n    threshold: {count: -1, window: 0s}\n",
		`not yaml: [`,
	} {
		f.Add([]byte(seed))
	}
	events := fuzzEvents()
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := rules.Parse(data, rules.Options{Channels: []string{"slack", "email"}})
		if err != nil {
			if set != nil {
				t.Fatalf("refused with a set: %v", err)
			}
			return
		}
		own := map[*rules.Rule]bool{}
		for _, r := range set.Rules {
			own[r] = true
		}
		e := New(set)
		var ds []Decision
		for i := range events {
			e.Observe(&events[i])
			ds = e.Evaluate(&events[i], ds[:0])
			for _, d := range ds {
				if !own[d.Rule] {
					t.Fatalf("decision for a rule not in the set: %+v", d)
				}
				e.MarkDecided(d)
			}
		}
		_ = e.Windows()
	})
}
