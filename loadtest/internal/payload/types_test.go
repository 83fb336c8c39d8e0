package payload

import (
	"testing"

	"github.com/kilnhq/kiln/schemas"
)

// TestTypedBodiesAreValidAgainstTheirSchemas compiles the types' schemas as
// the registry does and checks every generated event against its type,
// and that the schemas do refuse a bad event (they are not vacuous).
func TestTypedBodiesAreValidAgainstTheirSchemas(t *testing.T) {
	t.Parallel()
	builtin, err := schemas.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	envelope, _ := builtin.Schema("")
	types := Types(50)
	docs := map[string][]byte{"": envelope}
	for _, ty := range types {
		docs[ty.Name] = ty.Schema
	}
	reg, err := schemas.Compile(docs)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[any]bool{}
	for _, b := range TypedSingles(100, types) {
		v := decode(t, b)
		if errs := reg.Validate(v); errs != nil {
			t.Fatalf("%s: %v", b, errs)
		}
		seen[v.(map[string]any)["eventType"]] = true
	}
	if len(seen) != 50 {
		t.Errorf("%d types among 100 singles, want 50", len(seen))
	}
	requireValidBatches(t, reg, TypedBatches(3, 100, types), 100)
	bad := map[string]string{
		types[0].Name: `"metadata":{"path":"","durationMs":-1}`,
		types[1].Name: `"metadata":{"order":{"id":"o","items":[{"sku":"s","qty":0}]}}`,
	}
	for typ, meta := range bad {
		body := `{"eventType":"` + typ + `","userId":"u","timestamp":1700000000000,` + meta + `}`
		if errs := reg.Validate(decode(t, []byte(body))); errs == nil {
			t.Errorf("%s: a bad event passed", typ)
		}
	}
}
