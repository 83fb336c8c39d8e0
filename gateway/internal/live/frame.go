package live

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/schemas"
)

// EventName is the SSE event name of every event frame. "message" is the
// SSE default type, so browsers hand the frames to EventSource.onmessage
// (as the pre-Kiln stream's unnamed frames were) and to
// addEventListener("message"); the event's type is the eventType field of
// the data.
const EventName = "message"

// Frame is one event as the hub fans it out: encoded once, shared
// read-only by every client it goes to.
type Frame struct {
	Seq    uint64 // 0 for an alert
	Type   string
	UserID string
	// alert marks an "alert" frame: no id, sent to every client that did
	// not opt out, whatever its event filter.
	alert bool
	// wire is the encoded frame: id, event and data lines and the blank
	// line that ends it.
	wire []byte
}

// eventFrame turns a stored message into its frame: the stored envelope
// plus seq.
func eventFrame(msg jetstream.Msg, seq uint64) (*Frame, error) {
	if f, ok := splicedFrame(msg, seq); ok {
		return f, nil
	}
	var ev schemas.Event
	if err := json.Unmarshal(msg.Data(), &ev); err != nil {
		return nil, fmt.Errorf("decode event at seq %d on %s: %w", seq, msg.Subject(), err)
	}
	if ev.EventType == "" {
		ev.EventType, _ = schemas.EventType(msg.Subject())
	}
	ev.Seq = seq
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event at seq %d: %w", seq, err)
	}
	return &Frame{Seq: seq, Type: ev.EventType, UserID: ev.UserID, wire: eventWire(seq, data, nil)}, nil
}

// splicedFrame is eventFrame without decoding, for envelopes as ingest
// stores them: one line of JSON without "seq", the type in the subject and
// the userId in the Kiln-User-Id header. The seq is spliced in before the
// closing brace. false when the message is not like that.
func splicedFrame(msg jetstream.Msg, seq uint64) (*Frame, bool) {
	data := msg.Data()
	users := msg.Headers().Values(schemas.HeaderUserID)
	typ, ok := schemas.EventType(msg.Subject())
	if !ok || len(users) != 1 || len(data) < 2 || data[0] != '{' || data[len(data)-1] != '}' ||
		bytes.ContainsAny(data, "\r\n") || bytes.Contains(data, []byte(`"seq"`)) || !json.Valid(data) {
		return nil, false
	}
	return &Frame{Seq: seq, Type: typ, UserID: users[0], wire: eventWire(seq, data[:len(data)-1], []byte(`,"seq":`))}, true
}

// eventWire encodes an event frame: data, then (when splice is set) splice,
// seq and the closing brace.
func eventWire(seq uint64, data, splice []byte) []byte {
	wire := make([]byte, 0, len(data)+64)
	wire = append(wire, "id: "...)
	wire = strconv.AppendUint(wire, seq, 10)
	wire = append(wire, "\nevent: "+EventName+"\ndata: "...)
	wire = append(wire, data...)
	if splice != nil {
		wire = append(wire, splice...)
		wire = strconv.AppendUint(wire, seq, 10)
		wire = append(wire, '}')
	}
	return append(wire, "\n\n"...)
}

// AlertEvent is the SSE event name of the frames announcing new alerts.
const AlertEvent = "alert"

// alertFrame wraps a new alert as the notifier announced it (the JSON of a
// readmodel.Alert) in an "alert" frame without id, so it does not move the
// client's Last-Event-ID. The JSON is compacted onto one data line.
func alertFrame(payload []byte) (*Frame, error) {
	var data bytes.Buffer
	if err := json.Compact(&data, payload); err != nil {
		return nil, fmt.Errorf("alert is not JSON: %w", err)
	}
	if data.Len() == 0 || data.Bytes()[0] != '{' {
		return nil, errors.New("alert is not a JSON object")
	}
	return &Frame{alert: true, wire: dataFrame(AlertEvent, data.Bytes())}, nil
}

const (
	// connectedFrame is the first message of every stream (compat):
	// unnamed, without id, so it does not move the client's Last-Event-ID.
	connectedFrame = "data: {\"connected\":true}\n\n"
	// pingFrame is the heartbeat: an SSE comment, which browsers ignore.
	pingFrame = ": ping\n\n"
)

// namedFrame encodes a frame without id: event name plus JSON data.
func namedFrame(name string, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		// Only maps of strings and numbers and payloads that were JSON
		// before reach here.
		data = []byte(`{}`)
	}
	return dataFrame(name, data)
}

// dataFrame encodes a frame without id from already encoded JSON.
func dataFrame(name string, data []byte) []byte {
	wire := make([]byte, 0, len(data)+len(name)+16)
	wire = append(wire, "event: "...)
	wire = append(wire, name...)
	wire = append(wire, "\ndata: "...)
	wire = append(wire, data...)
	return append(wire, "\n\n"...)
}

// resetFrame tells a resuming client that its position is older than the
// stream's history, which now starts at first.
func resetFrame(first uint64) []byte {
	return namedFrame("reset", map[string]any{
		"reason":   fmt.Sprintf("history starts at %d", first),
		"firstSeq": first,
	})
}

// errorFrame is the last frame of a stream the server ends.
func errorFrame(reason string) []byte {
	return namedFrame("error", map[string]string{"reason": reason})
}
