package schemas_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kilnhq/kiln/schemas"
)

const benchMetadata = `{"durationMs":1003,"path":"/products/3","referrer":"https://www.example.com/search?q=kiln"}`

func benchDoc(b *testing.B, eventType string) any {
	d := json.NewDecoder(strings.NewReader(`{"eventType":"` + eventType + `","userId":"bench-user-3","timestamp":1700000000003,"metadata":` + benchMetadata + `}`))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		b.Fatal(err)
	}
	return v
}

func benchValidate(b *testing.B, eventType string) {
	reg, err := schemas.NewRegistry()
	if err != nil {
		b.Fatal(err)
	}
	doc := benchDoc(b, eventType)
	b.ReportAllocs()
	for b.Loop() {
		if errs := reg.Validate(doc); errs != nil {
			b.Fatal(errs)
		}
	}
}

// BenchmarkValidate checks a page_view, a type with its own schema.
func BenchmarkValidate(b *testing.B) { benchValidate(b, "page_view") }

// BenchmarkValidateUnregistered checks a type without a schema of its own.
func BenchmarkValidateUnregistered(b *testing.B) { benchValidate(b, "signup.completed") }

func benchEvent() schemas.Event {
	return schemas.Event{
		ID: "01JBENCHBASE1INEXAMP1E0000", EventType: "page_view", UserID: "bench-user-3",
		Timestamp: 1700000000003, Metadata: json.RawMessage(benchMetadata), ReceivedAt: 1700000001234,
	}
}

func BenchmarkEncodeEventMarshal(b *testing.B) {
	ev := benchEvent()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(ev); err != nil {
			b.Fatal(err)
		}
	}
}

func benchValidateFields(b *testing.B, eventType string) {
	reg, err := schemas.NewRegistry()
	if err != nil {
		b.Fatal(err)
	}
	raw := []byte(`{"eventType":"` + eventType + `","userId":"bench-user-3","timestamp":1700000000003,"metadata":` + benchMetadata + `}`)
	b.ReportAllocs()
	for b.Loop() {
		f, ok := schemas.ReadEvent(raw)
		if !ok {
			b.Fatal("not read")
		}
		if errs := reg.ValidateFields(&f, raw); errs != nil {
			b.Fatal(errs)
		}
	}
}

// BenchmarkValidateFields is what ingest does per event: read the envelope
// members from the text, then validate (page_view: its metadata checked on
// the text too).
func BenchmarkValidateFields(b *testing.B) { benchValidateFields(b, "page_view") }

func BenchmarkValidateFieldsUnregistered(b *testing.B) { benchValidateFields(b, "signup.completed") }
