package socketio

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// FuzzChatDecoder feeds the decoders of clients' emits (a /chat message,
// an order:update) with the arguments of an EVENT packet as the library
// decodes them (encoding/json into any). Whatever a client sends, a
// decoder returns a value within its limits or an error that never
// carries the client's content, and a decoded chat message becomes a
// valid event that reads back as sent, at most 6 bytes a decoded byte.
// make test runs the seeds; make test-fuzz runs it for 60 s.
func FuzzChatDecoder(f *testing.F) {
	for _, seed := range []string{
		`["message",{"author":"a","text":"hi"}]`,
		`["message",{"text":"<script>alert(1)</script>\u0000\u2028"}]`,
		`["message",{"author":"","text":""}]`,
		`["message",{"author":null,"text":"x"}]`,
		`["message","just a string"]`,
		`["message"]`,
		`["message",{"author":5,"text":"x"}]`,
		`["message",{"author":"a","text":{"nested":[1,2,3]}}]`,
		`["message",{"author":"` + strings.Repeat("é", 300) + `","text":"x"}]`,
		`["message",{"text":"` + strings.Repeat("x", 300) + `"}]`,
		`["message",{"text":"\ud800 lone surrogate"}]`,
		"[\"message\",{\"text\":\"\xff\xfe invalid UTF-8\"}]",
		`["message",{"_placeholder":true,"num":0}]`,
		`["order:update",{"orderId":"o-1","status":"paid","extra":{"a":1}}]`,
		`["order:update",{"orderId":"","status":"paid"}]`,
		`["order:update",{"orderId":"` + strings.Repeat("o", 129) + `","status":"s"}]`,
		`["order:update",[1,2]]`,
		`[[[[[[[[[[]]]]]]]]]]`,
		`{"not":"an array"}`,
	} {
		f.Add([]byte(seed))
	}
	const limit = 256
	f.Fuzz(func(t *testing.T, packet []byte) {
		var payload any
		if json.NewDecoder(bytes.NewReader(packet)).Decode(&payload) != nil {
			return // the library refuses the packet before any handler
		}
		args, ok := payload.([]any)
		if !ok || len(args) == 0 {
			return
		}
		args = args[1:]
		if m, err := decodeChat(args, limit); err != nil {
			requireOwnWords(t, err, packet)
		} else {
			require.NotEmpty(t, m.Author)
			require.LessOrEqual(t, utf8.RuneCountInString(m.Author), maxAuthorChars)
			require.LessOrEqual(t, len(m.Author)+len(m.Text), limit)
			ev := chatEvent(m, time.UnixMilli(1_700_000_000_000))
			require.True(t, json.Valid(ev), "event %q", ev)
			require.LessOrEqual(t, len(ev), 6*limit+200, "event %q", ev)
			var back struct {
				EventType, UserID string
				Metadata          struct{ Author, Text string }
			}
			require.NoError(t, json.Unmarshal(ev, &back))
			require.Equal(t, chatMessage, back.EventType)
			require.Equal(t, m.Author, back.UserID)
			require.Equal(t, m, chatIn{Author: back.Metadata.Author, Text: back.Metadata.Text})
		}
		if u, err := decodeOrderUpdate(args, limit); err != nil {
			requireOwnWords(t, err, packet)
		} else {
			require.NotEmpty(t, u.OrderID)
			require.NotEmpty(t, u.Status)
			require.LessOrEqual(t, utf8.RuneCountInString(u.OrderID), maxOrderIDChars)
			require.LessOrEqual(t, len(u.OrderID)+len(u.Status), limit)
		}
	})
}

// requireOwnWords: an error to a client is short and in Kiln's words.
func requireOwnWords(t *testing.T, err error, packet []byte) {
	t.Helper()
	require.Less(t, len(err.Error()), 200, "error %q", err)
	if len(packet) > 40 {
		require.NotContains(t, err.Error(), string(packet[len(packet)/2:]), "the error echoes the packet")
	}
}
