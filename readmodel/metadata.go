package readmodel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// metadataToBSON converts event metadata JSON to a BSON document so it can
// be queried natively. ok is false when a key cannot be a MongoDB field name
// (leading '$', a '.', or NUL); such metadata is stored as a JSON string.
func metadataToBSON(raw json.RawMessage) (doc bson.D, ok bool, err error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v map[string]any
	if err := d.Decode(&v); err != nil {
		return nil, false, fmt.Errorf("decode metadata: %w", err)
	}
	out, ok := toBSON(v)
	if !ok {
		return nil, false, nil
	}
	return out.(bson.D), true, nil
}

func toBSON(v any) (any, bool) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			if strings.HasPrefix(k, "$") || strings.ContainsAny(k, ".\x00") {
				return nil, false
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		d := make(bson.D, 0, len(keys))
		for _, k := range keys {
			child, ok := toBSON(x[k])
			if !ok {
				return nil, false
			}
			d = append(d, bson.E{Key: k, Value: child})
		}
		return d, true
	case []any:
		a := make(bson.A, len(x))
		for i, e := range x {
			child, ok := toBSON(e)
			if !ok {
				return nil, false
			}
			a[i] = child
		}
		return a, true
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n, true
		}
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) {
			return x.String(), true
		}
		return f, true
	default: // string, bool, nil
		return x, true
	}
}

// metadataToJSON converts a stored BSON metadata document back to JSON.
func metadataToJSON(raw bson.Raw) (json.RawMessage, error) {
	b, err := bson.MarshalExtJSON(raw, false, false)
	if err != nil {
		return nil, fmt.Errorf("encode metadata: %w", err)
	}
	return b, nil
}
