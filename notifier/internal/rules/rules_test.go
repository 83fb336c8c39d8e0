package rules

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
)

func TestPatternMatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern string
		yes     []string
		no      []string
	}{
		{"payment.failed", []string{"payment.failed"}, []string{"payment", "payment.failed.x", "payment.faile", "x.payment.failed"}},
		{"order.*", []string{"order.created", "order.canceled"}, []string{"order", "order.item.added", "orders.created", "order."}},
		{"order.>", []string{"order.created", "order.item.added"}, []string{"order", "orders.x"}},
		{"*", []string{"page_view", "signup"}, []string{"order.created"}},
		{">", []string{"page_view", "order.item.added"}, []string{""}},
		{"*.failed", []string{"payment.failed", "job.failed"}, []string{"payment.failed.twice", "failed"}},
	} {
		p, err := ParsePattern(tc.pattern)
		require.NoError(t, err)
		for _, s := range tc.yes {
			require.True(t, p.Match(s), "%s should match %s", tc.pattern, s)
		}
		for _, s := range tc.no {
			require.False(t, p.Match(s), "%s should not match %s", tc.pattern, s)
		}
	}
	for _, bad := range []string{"", "a.>.b", "a..b", "a b", "order.*x"} {
		_, err := ParsePattern(bad)
		require.Error(t, err, bad)
	}
}

func TestConditions(t *testing.T) {
	t.Parallel()
	ev := &schemas.Event{ID: "e1", EventType: "order.created", UserID: "u1", Timestamp: 1000,
		Metadata: json.RawMessage(`{"amount":1500,"currency":"EUR","reason":"fraud","flag":true,"nested":{"n":2},"s":"12"}`)}
	for _, tc := range []struct {
		where string
		want  bool
	}{
		{`{field: metadata.amount, gt: 1000}`, true},
		{`{field: metadata.amount, gt: 1500}`, false},
		{`{field: metadata.amount, gte: 1500}`, true},
		{`{field: metadata.amount, lt: 10}`, false},
		{`{field: metadata.amount, lte: 1500.0}`, true},
		{`{field: metadata.s, gt: 1}`, false}, // strings are not numbers
		{`{field: metadata.amount, equals: 1500}`, true},
		{`{field: metadata.amount, equals: "1500"}`, false},
		{`{field: metadata.currency, equals: EUR}`, true},
		{`{field: metadata.flag, equals: true}`, true},
		{`{field: metadata.flag, equals: false}`, false},
		{`{field: metadata.reason, in: [fraud, chargeback]}`, true},
		{`{field: metadata.currency, in: [USD, GBP]}`, false},
		{`{field: metadata.nested.n, in: [1, 2]}`, true},
		{`{field: metadata.coupon, exists: false}`, true},
		{`{field: metadata.nested, exists: true}`, true},
		{`{field: userId, equals: u1}`, true},
		{`{field: eventType, in: [order.created]}`, true},
		{`{field: timestamp, gte: 1000}`, true},
		{`{field: id, equals: e2}`, false},
	} {
		set, err := Parse([]byte("rules: [{name: r, match: {type: '>', where: ["+tc.where+"]}, channels: [log]}]"), Options{})
		require.NoError(t, err, tc.where)
		var f Fields
		f.Reset(ev)
		require.Equal(t, tc.want, set.Rules[0].Conds[0].Match(&f), tc.where)
	}
}

func TestExampleRulesCompile(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../rules.example.yaml")
	require.NoError(t, err)
	set, err := Parse(data, Options{})
	require.NoError(t, err)
	require.Len(t, set.Rules, 3)
	burst := set.Rules[0]
	require.Equal(t, Threshold, burst.Kind)
	require.Equal(t, 5, burst.Count)
	require.Equal(t, time.Minute, burst.Window)
	require.Equal(t, []string{"log"}, burst.Channels, "optional channels are dropped when not configured")

	withSlack, err := Parse(data, Options{Channels: []string{"slack", "email"}})
	require.NoError(t, err)
	require.Equal(t, []string{"log", "slack", "email"}, withSlack.Rules[0].Channels)

	ev := &schemas.Event{ID: "e1", EventType: "order.created", UserID: "u1", Timestamp: 1_700_000_000_000,
		Metadata: json.RawMessage(`{"id":"o-1","amount":1500.5,"currency":"EUR"}`)}
	dedupe, msg, err := set.Rules[1].Render(ev, Window{})
	require.NoError(t, err)
	require.Empty(t, dedupe)
	require.Equal(t, ":moneybag: Order o-1 of 1500.5 EUR by u1", msg)
	dedupe, msg, err = burst.Render(ev, Window{Group: "u1", Count: 6, Start: 1_700_000_040_000, End: 1_700_000_100_000})
	require.NoError(t, err)
	require.Equal(t, "u1", dedupe)
	require.Equal(t, ":rotating_light: 6 failed payments for user u1 within 1m0s (from 22:14:00 UTC)", msg)
}

func TestValidationErrorsNameRuleAndField(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, doc        string
		rule, field, msg string
	}{
		{"unknown rule field", `rules: [{name: a, match: {type: x}, channels: [log], colour: red}]`, "a", "", `unknown field "colour"`},
		{"unknown condition field", `rules: [{name: a, match: {type: x, where: [{field: userId, equal: u}]}, channels: [log]}]`, "a", "match.where[0]", `unknown field "match.where[0].equal"`},
		{"missing name", `rules: [{match: {type: x}, channels: [log]}]`, "", "name", "required"},
		{"bad name", `rules: [{name: "-x", match: {type: x}, channels: [log]}]`, "-x", "name", "1-64 characters"},
		{"missing type", `rules: [{name: a, channels: [log]}]`, "a", "match.type", "required"},
		{"bad pattern", `rules: [{name: a, match: {types: [ok, "a.>.b"]}, channels: [log]}]`, "a", "match.types[1]", `">" must be the last token`},
		{"bad field", `rules: [{name: a, match: {type: x, where: [{field: amount, gt: 1}]}, channels: [log]}]`, "a", "match.where[0].field", "unknown field"},
		{"gt not a number", `rules: [{name: a, match: {type: x, where: [{field: metadata.amount, gt: lots}]}, channels: [log]}]`, "a", "match.where[0].gt", "must be a number"},
		{"two operators", `rules: [{name: a, match: {type: x, where: [{field: userId, gt: 1, lt: 2}]}, channels: [log]}]`, "a", "match.where[0]", "several operators"},
		{"no operator", `rules: [{name: a, match: {type: x, where: [{field: userId}]}, channels: [log]}]`, "a", "match.where[0]", "needs one operator"},
		{"bad in item", `rules: [{name: a, match: {type: x, where: [{field: userId, in: [a, [b]]}]}, channels: [log]}]`, "a", "match.where[0].in[1]", "must be a string"},
		{"bad kind", `rules: [{name: a, kind: sometimes, match: {type: x}, channels: [log]}]`, "a", "kind", `"each" or "threshold"`},
		{"threshold missing", `rules: [{name: a, kind: threshold, match: {type: x}, channels: [log]}]`, "a", "threshold", "required"},
		{"threshold count", `rules: [{name: a, kind: threshold, threshold: {count: -1, window: 1m}, match: {type: x}, channels: [log]}]`, "a", "threshold.count", "whole number"},
		{"threshold window", `rules: [{name: a, kind: threshold, threshold: {count: 5, window: soon}, match: {type: x}, channels: [log]}]`, "a", "threshold.window", "duration"},
		{"threshold on each", `rules: [{name: a, threshold: {count: 5, window: 1m}, match: {type: x}, channels: [log]}]`, "a", "threshold", `only for kind "threshold"`},
		{"throttle", `rules: [{name: a, throttle: 5 minutes, match: {type: x}, channels: [log]}]`, "a", "throttle", "duration"},
		{"channel not configured", `rules: [{name: a, match: {type: x}, channels: [log, slack]}]`, "a", "channels[1]", `channel "slack" is not configured`},
		{"no channels", `rules: [{name: a, match: {type: x}}]`, "a", "channels", "required"},
		{"template syntax", `rules: [{name: a, match: {type: x}, channels: [log], message: "{{.Rule"}]`, "a", "message", "invalid template"},
		{"template field", `rules: [{name: a, match: {type: x}, channels: [log], dedupe: "{{.Nope}}"}]`, "a", "dedupe", "can't evaluate field Nope"},
		{"duplicate names", `rules: [{name: a, match: {type: x}, channels: [log]}, {name: a, match: {type: y}, channels: [log]}]`, "a", "name", "duplicate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), Options{})
			var errs Errors
			require.True(t, errors.As(err, &errs), "got %v", err)
			require.Len(t, errs, 1, "%v", err)
			require.Equal(t, tc.rule, errs[0].Rule)
			require.Equal(t, tc.field, errs[0].Field)
			require.Contains(t, errs[0].Msg, tc.msg)
			if tc.rule != "" {
				require.Contains(t, err.Error(), `rule "`+tc.rule+`"`)
			}
		})
	}

	// Every problem is reported at once, and file-level problems too.
	_, err := Parse([]byte(`rules: [{name: ok, match: {type: x}, channels: [log]}, {name: b, match: {type: ""}, channels: [pager]}, {name: c, kind: x, match: {type: y}, channels: [log]}]`), Options{})
	require.ErrorContains(t, err, "invalid rules (3 problems)")
	require.ErrorContains(t, err, `rule "b" (rules[1], line 1): channels[0]: channel "pager" is not configured`)
	require.ErrorContains(t, err, `rule "c" (rules[2], line 1): kind`)
	for _, doc := range []string{``, `[1, 2]`, `rules: []`, `rules: [1`, `{"rulez": []}`} {
		_, err := Parse([]byte(doc), Options{})
		require.ErrorContains(t, err, "rules file", doc)
	}
	_, err = Parse([]byte(`rules: [{name: a.b-c_1, match: {type: x}, channels: [log]}]`), Options{})
	require.NoError(t, err)
	// JSON works too.
	set, err := Parse([]byte(`{"rules":[{"name":"j","match":{"type":"a.*"},"channels":["log"],"kind":"each"}]}`), Options{})
	require.NoError(t, err)
	require.Equal(t, "j", set.Rules[0].Name)
	require.True(t, strings.HasPrefix(set.Rules[0].Types[0].String(), "a."))
}
