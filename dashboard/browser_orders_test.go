package dashboard_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// ordersAndChat posts an order.created, then its order.canceled, over HTTP
// and sees the order appear and change status in the Orders panel; then a
// chat message appear in the Chat panel. The page is already open: both
// come from the live stream, not from a reload.
func ordersAndChat(t *testing.T, page *tab, p *poster) {
	page.waitJS(`document.body.dataset.ordersState === 'live'`, time.Minute, "the orders panel follows the stream")
	id := fmt.Sprintf("ord-browser-%d", time.Now().UnixNano())
	now := time.Now().UTC().Format(time.RFC3339)
	created := p.make("order.created", "ann@example.com")
	created.Metadata = map[string]any{"id": id, "status": "created", "amount": 42.5, "currency": "EUR",
		"customerEmail": "ann@example.com", "createdAt": now}
	p.mustPost(t, created)
	row := `document.querySelector('#orders-body tr[data-id=` + jsString(id) + `]')`
	page.waitJS(row+`?.dataset.status === 'created'`, seenWithin, "the new order shows as created")
	got := eval[string](page, row+`.textContent`)
	require.Contains(t, got, "42.50 EUR")
	require.Contains(t, got, "ann@example.com")

	canceled := p.make("order.canceled", "ops")
	canceled.Metadata = map[string]any{"id": id, "status": "canceled", "reason": "customer asked", "createdAt": now}
	p.mustPost(t, canceled)
	page.waitJS(row+`?.dataset.status === 'canceled'`, seenWithin, "the order's status changes to canceled")
	page.waitJS(row+`.querySelector('.chip').textContent === 'canceled'`, seenWithin, "the status chip says canceled")

	text := fmt.Sprintf("hello from the browser test %d", time.Now().UnixNano())
	msg := p.make("chat.message", "bob")
	msg.Metadata = map[string]any{"author": "bob", "text": text, "createdAt": now}
	p.mustPost(t, msg)
	item := `[...document.querySelectorAll('#chat-list li')].find((li) => li.querySelector('.text')?.textContent === ` + jsString(text) + `)`
	page.waitJS(item+` !== undefined`, seenWithin, "the chat message shows")
	require.Equal(t, "bob", eval[string](page, item+`.querySelector('.author').textContent`))
}
