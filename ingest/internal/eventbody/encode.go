package eventbody

import (
	"encoding/json"
	"strconv"

	"github.com/kilnhq/kiln/schemas"
)

// AppendEvent appends the stored JSON form of ev to dst: byte for byte what
// json.Marshal(ev) writes when ev.Metadata is compact (as Normalize makes
// it), without json.Marshal's reflection and second pass over the metadata.
func AppendEvent(dst []byte, ev *schemas.Event) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, ev.ID)
	dst = append(dst, `,"eventType":`...)
	dst = appendString(dst, ev.EventType)
	dst = append(dst, `,"userId":`...)
	dst = appendString(dst, ev.UserID)
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, ev.Timestamp, 10)
	if len(ev.Metadata) > 0 {
		dst = append(dst, `,"metadata":`...)
		dst = append(dst, ev.Metadata...)
	}
	dst = append(dst, `,"receivedAt":`...)
	dst = strconv.AppendInt(dst, ev.ReceivedAt, 10)
	if ev.SchemaVersion != 0 {
		dst = append(dst, `,"schemaVersion":`...)
		dst = strconv.AppendInt(dst, int64(ev.SchemaVersion), 10)
	}
	if ev.Seq != 0 {
		dst = append(dst, `,"seq":`...)
		dst = strconv.AppendUint(dst, ev.Seq, 10)
	}
	return append(dst, '}')
}

func appendString(dst []byte, s string) []byte { return AppendString(dst, s) }

// AppendString appends s as encoding/json writes it: printable ASCII other
// than the characters it escapes is copied, anything else is left to
// encoding/json.
func AppendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always encodes
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
