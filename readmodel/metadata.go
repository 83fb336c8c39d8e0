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
// be queried natively, keeping its keys in the order they were sent (a
// bson.D at every level: the history returns them in that order, as
// /stream does). ok is false when a key cannot be a MongoDB field name
// (leading '$', a '.', or NUL); such metadata is stored as a JSON string.
// A key sent twice keeps its first position and its last value, as a
// decoder into a map would keep the last value.
func metadataToBSON(raw json.RawMessage) (doc bson.D, ok bool, err error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	tok, err := d.Token()
	if err != nil {
		return nil, false, fmt.Errorf("decode metadata: %w", err)
	}
	if tok != json.Delim('{') {
		return nil, false, fmt.Errorf("decode metadata: not an object")
	}
	out, ok, err := decodeObject(d)
	if err != nil {
		return nil, false, fmt.Errorf("decode metadata: %w", err)
	}
	return out, ok, nil
}

// decodeObject reads an object's members after its '{', through its '}'.
func decodeObject(d *json.Decoder) (bson.D, bool, error) {
	doc := bson.D{}
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, false, err
		}
		k, _ := tok.(string)
		if strings.HasPrefix(k, "$") || strings.ContainsAny(k, ".\x00") {
			return nil, false, nil
		}
		v, ok, err := decodeValue(d)
		if err != nil || !ok {
			return nil, ok, err
		}
		if i := slices.IndexFunc(doc, func(e bson.E) bool { return e.Key == k }); i >= 0 {
			doc[i].Value = v
		} else {
			doc = append(doc, bson.E{Key: k, Value: v})
		}
	}
	_, err := d.Token() // '}'
	return doc, true, err
}

// decodeValue reads one JSON value.
func decodeValue(d *json.Decoder) (any, bool, error) {
	tok, err := d.Token()
	if err != nil {
		return nil, false, err
	}
	switch x := tok.(type) {
	case json.Delim:
		if x == '{' {
			return decodeObject(d)
		}
		a := bson.A{}
		for d.More() {
			v, ok, err := decodeValue(d)
			if err != nil || !ok {
				return nil, ok, err
			}
			a = append(a, v)
		}
		_, err := d.Token() // ']'
		return a, true, err
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n, true, nil
		}
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) {
			return x.String(), true, nil
		}
		return f, true, nil
	default: // string, bool, nil
		return x, true, nil
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
