package socketio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// Limits of the contract's fields that clients' emits become.
const (
	maxAuthorChars  = 256 // the author is the event's userId (CONTRACT.md 1)
	maxOrderIDChars = 128 // as an event id
)

// chatIn is a decoded /chat `message`.
type chatIn struct {
	Author, Text string
}

// ackOf splits the ack callback the library appends to an emit's
// arguments when the client asked for one.
func ackOf(args []any) ([]any, socket.Ack) {
	if n := len(args); n > 0 {
		if ack, ok := args[n-1].(socket.Ack); ok {
			return args[:n-1], ack
		}
	}
	return args, nil
}

// decodeChat is the /chat `message` {author, text} of an emit's arguments
// (as the library decoded them: JSON objects are maps). author is
// optional ("anonymous"), text a string; together at most maxBytes bytes.
func decodeChat(args []any, maxBytes int) (chatIn, error) {
	in, err := object(args, "message", "{author, text}")
	if err != nil {
		return chatIn{}, err
	}
	var m chatIn
	if m.Author, err = stringField(in, "message", "author", false); err != nil {
		return chatIn{}, err
	}
	if m.Text, err = stringField(in, "message", "text", true); err != nil {
		return chatIn{}, err
	}
	if m.Author == "" {
		m.Author = "anonymous"
	}
	if n := utf8.RuneCountInString(m.Author); n > maxAuthorChars {
		return chatIn{}, fmt.Errorf("message.author: at most %d characters, got %d", maxAuthorChars, n)
	}
	if n := len(m.Author) + len(m.Text); n > maxBytes {
		return chatIn{}, fmt.Errorf("message too large: author and text are %d bytes, SOCKETIO_MAX_MESSAGE_BYTES is %d", n, maxBytes)
	}
	return m, nil
}

// chatEvent is the chat.message event a /chat message is stored as.
// HTML is not escaped: a text of `<` stays one byte a character.
func chatEvent(m chatIn, now time.Time) []byte {
	type meta struct {
		Author    string `json:"author"`
		Text      string `json:"text"`
		CreatedAt string `json:"createdAt"`
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(struct {
		EventType string `json:"eventType"`
		UserID    string `json:"userId"`
		Timestamp int64  `json:"timestamp"`
		Metadata  meta   `json:"metadata"`
	}{chatMessage, m.Author, now.UnixMilli(), meta{m.Author, m.Text, now.UTC().Format(jsTime)}})
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
}

// orderUpdateIn is a decoded /notifications `order:update`.
type orderUpdateIn struct {
	OrderID string `json:"orderId"`
	Status  string `json:"status"`
}

// decodeOrderUpdate is the `order:update` {orderId, status} of an emit's
// arguments: both non-empty strings, together at most maxBytes bytes.
// Other fields are not relayed.
func decodeOrderUpdate(args []any, maxBytes int) (orderUpdateIn, error) {
	in, err := object(args, OrderUpdateEvent, "{orderId, status}")
	if err != nil {
		return orderUpdateIn{}, err
	}
	var u orderUpdateIn
	if u.OrderID, err = stringField(in, OrderUpdateEvent, "orderId", true); err != nil {
		return orderUpdateIn{}, err
	}
	if u.Status, err = stringField(in, OrderUpdateEvent, "status", true); err != nil {
		return orderUpdateIn{}, err
	}
	switch n := utf8.RuneCountInString(u.OrderID); {
	case u.OrderID == "" || u.Status == "":
		return orderUpdateIn{}, fmt.Errorf("%s: orderId and status must not be empty", OrderUpdateEvent)
	case n > maxOrderIDChars:
		return orderUpdateIn{}, fmt.Errorf("%s.orderId: at most %d characters, got %d", OrderUpdateEvent, maxOrderIDChars, n)
	}
	if n := len(u.OrderID) + len(u.Status); n > maxBytes {
		return orderUpdateIn{}, fmt.Errorf("%s too large: orderId and status are %d bytes, SOCKETIO_MAX_MESSAGE_BYTES is %d",
			OrderUpdateEvent, n, maxBytes)
	}
	return u, nil
}

func object(args []any, event, shape string) (map[string]any, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("%s: expected an object %s, got nothing", event, shape)
	}
	in, ok := args[0].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: expected an object %s, got %s", event, shape, kindOf(args[0]))
	}
	return in, nil
}

// stringField is in[name], a string; absent is "" unless required.
func stringField(in map[string]any, event, name string, required bool) (string, error) {
	v, ok := in[name]
	if !ok || v == nil {
		if required {
			return "", fmt.Errorf("%s.%s: required", event, name)
		}
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s.%s: expected a string, got %s", event, name, kindOf(v))
	}
	return s, nil
}

// kindOf names a decoded JSON value's kind, never its content.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	case []byte:
		return "binary data"
	default:
		return "an unsupported value"
	}
}
