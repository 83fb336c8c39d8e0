package catalog

import (
	"bytes"
	"encoding/json"
	"slices"

	"github.com/kilnhq/kiln/schemas"
)

// serverFields are what Kiln adds to a stored event; the client never
// sent them, so they are not validated.
var serverFields = []string{"receivedAt", "seq", "schemaVersion", "quarantined"}

// StoredFailure is one stored event a candidate version would refuse.
type StoredFailure struct {
	ID     string               `json:"id"`
	Errors []schemas.FieldError `json:"errors"`
}

// HistoryReport is what a candidate version makes of stored events.
type HistoryReport struct {
	Checked int `json:"checked"`
	Failing int `json:"failing"`
	// ByField counts the failing events per field ("" the event as a
	// whole); an event failing on two fields counts once in each.
	ByField map[string]int `json:"byField,omitempty"`
	// Examples are the first failing events (at most the number asked).
	Examples []StoredFailure `json:"examples,omitempty"`
}

// CheckHistory validates stored events (as read back: envelope plus
// Kiln's own fields) against reg, keeping up to examples failing ones.
func CheckHistory(reg *schemas.Registry, events []json.RawMessage, examples int) HistoryReport {
	r := HistoryReport{ByField: map[string]int{}}
	for _, raw := range events {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			continue // not an event: nothing a schema decides
		}
		for _, f := range serverFields {
			delete(doc, f)
		}
		r.Checked++
		errs := reg.Validate(doc)
		if len(errs) == 0 {
			continue
		}
		r.Failing++
		var fields []string
		for _, e := range errs {
			fields = append(fields, e.Field)
		}
		slices.Sort(fields)
		for _, f := range slices.Compact(fields) {
			r.ByField[f]++
		}
		if len(r.Examples) < examples {
			id, _ := doc["id"].(string)
			r.Examples = append(r.Examples, StoredFailure{ID: id, Errors: errs})
		}
	}
	if len(r.ByField) == 0 {
		r.ByField = nil
	}
	return r
}
