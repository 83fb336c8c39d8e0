package catalog_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/catalog"
)

func TestCompare(t *testing.T) {
	const base = `{"type":"object","required":["plan"],"properties":{
		"plan":{"type":"string","enum":["free","pro"]},
		"seats":{"type":"integer","minimum":1,"maximum":100},
		"tags":{"type":"array","items":{"type":"string","maxLength":20}}}}`
	cases := []struct {
		name, new string
		mode      catalog.Mode
		rules     []string // rules reported, in order
	}{
		{"unchanged", base, catalog.Full, nil},
		{"description only", `{"description":"d","type":"object","required":["plan"],"properties":{
			"plan":{"type":"string","enum":["free","pro"],"title":"Plan"},
			"seats":{"type":"integer","minimum":1,"maximum":100},
			"tags":{"type":"array","items":{"type":"string","maxLength":20}}}}`, catalog.Full, nil},
		{"required added breaks backward", `{"type":"object","required":["plan","seats"],"properties":{
			"plan":{"type":"string","enum":["free","pro"]},
			"seats":{"type":"integer","minimum":1,"maximum":100},
			"tags":{"type":"array","items":{"type":"string","maxLength":20}}}}`, catalog.Backward, []string{"required-added"}},
		{"required added is forward compatible", `{"type":"object","required":["plan","seats"],"properties":{
			"plan":{"type":"string","enum":["free","pro"]},
			"seats":{"type":"integer","minimum":1,"maximum":100},
			"tags":{"type":"array","items":{"type":"string","maxLength":20}}}}`, catalog.Forward, nil},
		{"enum widened breaks forward only", `{"type":"object","required":["plan"],"properties":{
			"plan":{"type":"string","enum":["free","pro","team"]},
			"seats":{"type":"integer","minimum":1,"maximum":100},
			"tags":{"type":"array","items":{"type":"string","maxLength":20}}}}`, catalog.Full, []string{"enum-widened"}},
		{"enum widened is backward compatible", `{"type":"object","required":["plan"],"properties":{
			"plan":{"type":"string","enum":["free","pro","team"]},
			"seats":{"type":"integer","minimum":1,"maximum":100},
			"tags":{"type":"array","items":{"type":"string","maxLength":20}}}}`, catalog.Backward, nil},
		{"bounds and nested items", `{"type":"object","required":["plan"],"properties":{
			"plan":{"type":"string","enum":["free","pro"]},
			"seats":{"type":"integer","minimum":2,"maximum":1000},
			"tags":{"type":"array","items":{"type":"string","maxLength":10}}}}`, catalog.Full,
			[]string{"minimum-tightened", "maximum-loosened", "maxLength-tightened"}},
		{"type narrowed", `{"type":"object","required":["plan"],"properties":{
			"plan":{"type":"string","enum":["free","pro"]},
			"seats":{"type":"string"},
			"tags":{"type":"array","items":{"type":"string","maxLength":20}}}}`, catalog.Backward,
			[]string{"type-narrowed"}},
		{"closing the object", `{"type":"object","additionalProperties":false,"required":["plan"],"properties":{
			"plan":{"type":"string","enum":["free","pro"]},
			"seats":{"type":"integer","minimum":1,"maximum":100},
			"tags":{"type":"array","items":{"type":"string","maxLength":20}}}}`, catalog.Backward, []string{"additionalProperties-closed"}},
		{"a pattern is undecided", `{"type":"object","required":["plan"],"properties":{
			"plan":{"type":"string","enum":["free","pro"],"pattern":"^[a-z]+$"},
			"seats":{"type":"integer","minimum":1,"maximum":100},
			"tags":{"type":"array","items":{"type":"string","maxLength":20}}}}`, catalog.Backward, []string{"pattern-changed"}},
		{"none checks nothing", `{"type":"string"}`, catalog.None, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			changes, err := catalog.Compare([]byte(base), []byte(tc.new), tc.mode)
			require.NoError(t, err)
			var rules []string
			for _, c := range changes {
				rules = append(rules, c.Rule)
			}
			require.Equal(t, tc.rules, rules, "%+v", changes)
		})
	}
}

func TestParseMode(t *testing.T) {
	m, err := catalog.ParseMode(" full ")
	require.NoError(t, err)
	require.Equal(t, catalog.Full, m)
	_, err = catalog.ParseMode("SIDEWAYS")
	require.Error(t, err)
}

func TestCheckHistoryNamesTheEventsAndFields(t *testing.T) {
	docs, err := schemas.Embedded()
	require.NoError(t, err)
	docs["signup.completed"] = []byte(signup)
	reg, err := schemas.Compile(docs)
	require.NoError(t, err)
	stored := []json.RawMessage{
		json.RawMessage(`{"id":"ok","eventType":"signup.completed","userId":"u","timestamp":1700000000000,"receivedAt":1700000000001,"seq":7,"metadata":{"plan":"pro"}}`),
		json.RawMessage(`{"id":"no-plan","eventType":"signup.completed","userId":"u","timestamp":1700000000000,"receivedAt":1,"seq":8,"metadata":{}}`),
		json.RawMessage(`{"id":"no-meta","eventType":"signup.completed","userId":"u","timestamp":1700000000000,"receivedAt":1,"seq":9}`),
		json.RawMessage(`{"id":"bad-plan","eventType":"signup.completed","userId":"u","timestamp":1700000000000,"receivedAt":1,"seq":10,"metadata":{"plan":3}}`),
	}
	r := catalog.CheckHistory(reg, stored, 2)
	require.Equal(t, 4, r.Checked)
	require.Equal(t, 3, r.Failing)
	require.Equal(t, map[string]int{"metadata": 1, "metadata.plan": 2}, r.ByField)
	require.Len(t, r.Examples, 2)
	require.Equal(t, "no-plan", r.Examples[0].ID)
	require.Equal(t, "no-meta", r.Examples[1].ID)
}
