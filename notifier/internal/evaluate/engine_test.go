package evaluate_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/notifier/internal/evaluate"
	"github.com/kilnhq/kiln/notifier/internal/rules"
	"github.com/kilnhq/kiln/schemas"
)

const testRules = `rules:
  - {name: big-order, match: {type: order.created, where: [{field: metadata.amount, gt: 1000}]}, channels: [log]}
  - {name: any-order, match: {type: "order.*"}, channels: [log]}
  - {name: burst, kind: threshold, threshold: {count: 5, window: 1m, groupBy: userId}, match: {type: payment.failed}, channels: [log]}
  - {name: region-burst, kind: threshold, threshold: {count: 1, window: 10s, groupBy: metadata.region}, match: {type: "payment.>"}, channels: [log]}
`

func engine(t *testing.T) *evaluate.Engine {
	t.Helper()
	set, err := rules.Parse([]byte(testRules), rules.Options{})
	require.NoError(t, err)
	return evaluate.New(set)
}

// base is 12:00:00.000 UTC, a minute boundary.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()

func event(id, typ, user string, ts int64, meta string) *schemas.Event {
	return &schemas.Event{ID: id, EventType: typ, UserID: user, Timestamp: ts, Metadata: json.RawMessage(meta)}
}

func names(ds []evaluate.Decision) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.Rule.Name)
	}
	return out
}

func TestEachRulesDecideEveryMatchingEventWithStableIDs(t *testing.T) {
	t.Parallel()
	e := engine(t)
	big := event("e1", "order.created", "u1", base, `{"amount":1500}`)
	ds := e.Evaluate(big, nil)
	require.Equal(t, []string{"big-order", "any-order"}, names(ds), "file order")
	require.Equal(t, evaluate.EachID("big-order", "e1"), ds[0].AlertID)
	again := e.Evaluate(big, nil)
	require.Equal(t, ds[0].AlertID, again[0].AlertID, "a redelivered event decides the same alert")
	require.Equal(t, []string{"any-order"}, names(e.Evaluate(event("e2", "order.created", "u1", base, `{"amount":10}`), nil)))
	require.Equal(t, []string{"any-order"}, names(e.Evaluate(event("e3", "order.canceled", "u1", base, ``), nil)))
	require.Empty(t, e.Evaluate(event("e4", "order.item.added", "u1", base, `{}`), nil), "* is one token")
	require.Empty(t, e.Evaluate(event("e5", "page_view", "u1", base, `{}`), nil))
	require.NotEqual(t, evaluate.EachID("a", "b:c"), evaluate.EachID("a:b", "c"), "parts are separated")
}

func TestThresholdFiresOncePerWindowAndGroup(t *testing.T) {
	t.Parallel()
	e := engine(t)
	fail := func(id, user string, ts int64) []evaluate.Decision {
		return e.Evaluate(event(id, "payment.failed", user, ts, `{}`), nil)
	}
	for i := range 5 {
		require.Empty(t, fail(fmt.Sprintf("a%d", i), "u1", base+int64(i)*1000), "5 is not more than 5")
		require.Empty(t, fail(fmt.Sprintf("a%d", i), "u1", base+int64(i)*1000), "redelivery does not count twice")
	}
	require.Empty(t, fail("b0", "u2", base), "other users count apart")
	ds := fail("a5", "u1", base+59_999)
	require.Len(t, ds, 1)
	d := ds[0]
	require.Equal(t, "burst", d.Rule.Name)
	require.Equal(t, evaluate.ThresholdID("burst", "u1", base), d.AlertID)
	require.Equal(t, rules.Window{Group: "u1", Count: 6, Start: base, End: base + 60_000}, d.Window)

	// Until the decision is stored, every further event decides it again.
	again := fail("a6", "u1", base+30_000)
	require.Len(t, again, 1)
	require.Equal(t, d.AlertID, again[0].AlertID)
	e.MarkDecided(d)
	require.Empty(t, fail("a7", "u1", base+30_000), "once per window")

	// The next window starts afresh; its alert has another id.
	for i := range 5 {
		require.Empty(t, fail(fmt.Sprintf("c%d", i), "u1", base+60_000+int64(i)))
	}
	next := fail("c5", "u1", base+119_999)
	require.Len(t, next, 1)
	require.NotEqual(t, d.AlertID, next[0].AlertID)
	require.Equal(t, base+60_000, next[0].Window.Start)
}

func TestThresholdGroupByMetadataAndMissingGroup(t *testing.T) {
	t.Parallel()
	e := engine(t)
	ev := func(id, meta string) []evaluate.Decision {
		return e.Evaluate(event(id, "payment.refused", "u", base, meta), nil)
	}
	require.Empty(t, ev("x1", `{"region":"eu"}`))
	require.Empty(t, ev("x2", `{"region":"us"}`))
	require.Empty(t, ev("x3", `{}`), "no group field: not counted")
	require.Empty(t, ev("x4", `{"region":null}`))
	ds := ev("x5", `{"region":"eu"}`)
	require.Len(t, ds, 1)
	require.Equal(t, "eu", ds[0].Window.Group)
	require.Equal(t, base, ds[0].Window.Start, "10s windows align to the epoch")
}

func TestObserveRebuildsWindowsWithoutDeciding(t *testing.T) {
	t.Parallel()
	before, after := engine(t), engine(t)
	for i := range 6 {
		ev := event(fmt.Sprintf("p%d", i), "payment.failed", "u1", base+int64(i), `{}`)
		after.Observe(ev)
		if i < 5 {
			before.Evaluate(ev, nil)
		}
	}
	// The sixth event was observed by the rebuild but never acked: its
	// redelivery must still decide the alert.
	ds := after.Evaluate(event("p5", "payment.failed", "u1", base+5, `{}`), nil)
	require.Len(t, ds, 1)
	require.Equal(t, before.Evaluate(event("p5", "payment.failed", "u1", base+5, `{}`), nil)[0].AlertID, ds[0].AlertID)
}

func TestPruneForgetsOldWindows(t *testing.T) {
	t.Parallel()
	e := engine(t)
	e.Evaluate(event("p1", "payment.failed", "u1", base, `{"region":"eu"}`), nil)
	require.Equal(t, 2, e.Windows())
	require.Equal(t, time.Minute, e.MaxWindow())
	require.Equal(t, 1, e.Prune(time.UnixMilli(base+30_000)), "the 10s window ended over 10s ago")
	require.Equal(t, 0, e.Prune(time.UnixMilli(base+119_999)))
	require.Equal(t, 1, e.Prune(time.UnixMilli(base+120_001)))
	require.Zero(t, e.Windows())
}

func TestNoRules(t *testing.T) {
	t.Parallel()
	e := evaluate.New(nil)
	require.Empty(t, e.Evaluate(event("e", "x", "u", base, `{}`), nil))
	require.Zero(t, e.MaxWindow())
}
