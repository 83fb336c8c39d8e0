package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/kilnhq/kiln/schemas"
)

// TemplateData is what the dedupe and message templates see, e.g.
// "{{.Rule}}: order {{.Metadata.id}} of {{.Metadata.amount}} by {{.UserID}}".
// A missing metadata key renders as "<no value>"; write
// {{or .Metadata.reason "unknown"}} for a fallback.
type TemplateData struct {
	Rule      string
	Kind      string // "each" or "threshold"
	EventID   string
	EventType string
	UserID    string
	Timestamp time.Time // the event's timestamp
	Metadata  map[string]any
	// Threshold rules only.
	Group       string        // the groupBy value, e.g. the userId
	Count       int           // matching events counted in the window
	Threshold   int           // the rule's count (the alert says Count > Threshold)
	Window      time.Duration // the window length
	WindowStart time.Time
	WindowEnd   time.Time
}

// Window is a threshold alert's window, for Render.
type Window struct {
	Group      string
	Count      int
	Start, End int64 // Unix ms
}

func defaultDedupe(k Kind) string {
	if k == Threshold {
		return "{{.Group}}" // throttle per group
	}
	return "" // throttle rule-wide
}

func defaultMessage(k Kind) string {
	if k == Threshold {
		return "{{.Rule}}: {{.Count}} {{.EventType}} events for {{.Group}} within {{.Window}} (more than {{.Threshold}})"
	}
	return "{{.Rule}}: {{.EventType}} for user {{.UserID}} (event {{.EventID}})"
}

// parseTemplate parses text (or def when empty) and executes it once on
// sample data, so a misspelt field fails at start-up, not at the first alert.
func parseTemplate(name, text, def string) (*template.Template, error) {
	if strings.TrimSpace(text) == "" {
		text = def
	}
	t, err := template.New(name).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("invalid template: %w", err)
	}
	sample := TemplateData{Rule: "r", Kind: "each", EventID: "e", EventType: "t", UserID: "u",
		Timestamp: time.UnixMilli(0), Metadata: map[string]any{}, Window: time.Minute}
	if err := t.Execute(&bytes.Buffer{}, &sample); err != nil {
		return nil, fmt.Errorf("invalid template: %w", err)
	}
	return t, nil
}

// Render returns the dedupe key and the message of an alert of r decided
// by ev (and, for threshold rules, w).
func (r *Rule) Render(ev *schemas.Event, w Window) (dedupe, message string, err error) {
	d := TemplateData{
		Rule: r.Name, Kind: r.Kind.String(), EventID: ev.ID, EventType: ev.EventType, UserID: ev.UserID,
		Timestamp: time.UnixMilli(ev.Timestamp).UTC(), Metadata: map[string]any{},
	}
	if len(ev.Metadata) > 0 {
		dec := json.NewDecoder(bytes.NewReader(ev.Metadata))
		dec.UseNumber()
		if err := dec.Decode(&d.Metadata); err != nil {
			d.Metadata = map[string]any{} // not an object: render without it
		}
	}
	if r.Kind == Threshold {
		d.Group, d.Count, d.Threshold, d.Window = w.Group, w.Count, r.Count, r.Window
		d.WindowStart, d.WindowEnd = time.UnixMilli(w.Start).UTC(), time.UnixMilli(w.End).UTC()
	}
	var b bytes.Buffer
	if err := r.dedupe.Execute(&b, &d); err != nil {
		return "", "", fmt.Errorf("rule %s: dedupe template: %w", r.Name, err)
	}
	dedupe = b.String()
	b.Reset()
	if err := r.message.Execute(&b, &d); err != nil {
		return "", "", fmt.Errorf("rule %s: message template: %w", r.Name, err)
	}
	return dedupe, b.String(), nil
}
