package socketio

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/catalog"
)

// Issue 24: a /chat message its type's schema refuses under enforcement
// quarantine is acked {id, seq: 0, quarantined: true}, as POST /events
// answers "quarantined":true; before, its ack said {id, seq: 0} as if it
// were stored. It is not stored; a message the schema accepts is acked
// {id, seq} as always.
func TestChatAckSaysQuarantined(t *testing.T) {
	h := startServerEnv(t, Config{}, map[string]string{"SCHEMAS_ENFORCEMENT": "quarantine"})
	cat, err := catalog.Open(context.Background(), h.js, schemas.StreamOptions{})
	require.NoError(t, err)
	_, _, err = cat.Push(context.Background(), chatMessage, []byte(`{"allOf":[{"$ref":"envelope.json"}],
		"required":["metadata"],"properties":{"metadata":{"type":"object","required":["author","text"],
		"properties":{"author":{"type":"string"},"text":{"type":"string","maxLength":3}}}}}`), "test: short texts only", true)
	require.NoError(t, err)

	c := h.dialClient(t).joined(ChatNamespace)
	// Ingest follows the registry: until it has the new version, a long
	// text is stored.
	stored := 0
	deadline := time.Now().Add(3 * time.Minute)
	var got map[string]any
	for id := 1; ; id++ {
		c.emit(ChatNamespace, MessageEvent, map[string]any{"author": "a", "text": fmt.Sprint("too long ", id)}, id)
		got = c.ack(ChatNamespace, id)
		require.NotContains(t, got, "error")
		if got["quarantined"] == true {
			break
		}
		require.NotZero(t, got["seq"], "stored: %v", got)
		stored++
		require.True(t, time.Now().Before(deadline), "ingest never enforced the new chat.message version")
	}
	require.NotEmpty(t, got["id"], "the id it is recovered under: %v", got)
	require.EqualValues(t, 0, got["seq"])

	c.emit(ChatNamespace, MessageEvent, map[string]any{"author": "a", "text": "ok"}, 1000)
	got = c.ack(ChatNamespace, 1000)
	require.NotContains(t, got, "quarantined")
	require.NotZero(t, got["seq"])
	require.EqualValues(t, stored+1, h.stored(t, chatMessage), "the quarantined message is not stored")
}
