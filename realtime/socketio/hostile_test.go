package socketio

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// Issue 21, "build beside the fixes": hostile clients against the
// Socket.IO server as shipped (default settings). Each case ends with the
// server still answering a handshake, the heap back near where it was
// before the case, and no event stored that should not have been.

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// payload is a /chat EVENT packet carrying text, on the wire.
func chatPacket(t *testing.T, text string, ack int) []byte {
	t.Helper()
	b, err := json.Marshal([]any{MessageEvent, map[string]any{"author": "hostile", "text": text}})
	require.NoError(t, err)
	id := ""
	if ack > 0 {
		id = fmt.Sprint(ack)
	}
	return append([]byte("42"+ChatNamespace+","+id), b...)
}

// readUntilClosed reads packets until the connection ends.
func readUntilClosed(c *client) error {
	for {
		if _, err := c.read(); err != nil {
			return err
		}
	}
}

func TestHostileSocketIOClients(t *testing.T) {
	h := startServer(t, Defaults())
	var storedWant atomic.Uint64 // chat messages that should be in the stream

	cases := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"oversized WebSocket messages are closed unread", func(t *testing.T) {
			// 1 MiB each from 20 clients at once: each is closed (1009, or
			// reset while it still sends), nothing buffered or stored.
			var wg sync.WaitGroup
			for range 20 {
				c := h.dialClient(t).joined(ChatNamespace)
				wg.Go(func() {
					_ = c.ws.WriteMessage(websocket.TextMessage, chatPacket(t, strings.Repeat("x", 1<<20), 0))
					_ = readUntilClosed(c)
				})
			}
			wg.Wait()
		}},
		{"oversized polling POST is 413", func(t *testing.T) {
			sid := h.pollingSession(t)
			resp, body := h.do(t, "POST", Path+"?EIO=4&transport=polling&sid="+sid, string(chatPacket(t, strings.Repeat("p", 900<<10), 0)))
			require.Equal(t, 413, resp.StatusCode, body)
		}},
		{"over-limit message within the packet is refused", func(t *testing.T) {
			c := h.dialClient(t).joined(ChatNamespace)
			c.send(string(chatPacket(t, strings.Repeat("m", 20<<10), 1)))
			require.Contains(t, c.ack(ChatNamespace, 1)["error"], "SOCKETIO_MAX_MESSAGE_BYTES")
		}},
		{"malformed packets", func(t *testing.T) {
			deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
			for _, p := range []string{
				"", "4", "42", "4x", "9", "6", "5", "42/chat,", "42/chat,[", "42/chat,{}", "42/chat,[1]", `42/chat,[null]`,
				`42/chat,["message"]`, `42/chat,["message",null]`, `42/chat,["message",{"text":{"a":1}}]`,
				`42/chat,["message",{"author":[],"text":"x"}]`, `42/chat,["message","text only"]`,
				`42/chat,["message",{"text":"x"}`, `42/chat,["message",{"text":"x"}]trailing`, // stored: a value, then anything
				`42/chat,99999999999999999999999999["message",{"text":{}}]`,
				`42/chat,-1["message",{"text":{}}]`,
				"42/chat," + deep, `42/chat,["message",` + deep + "]",
				"41/chat,", "43/chat,1[]", "44/chat,{}", "40/chat,{\"token\":" + strings.Repeat("9", 5000) + "}",
				"42/chat,[\"message\",{\"text\":\"\xff\xfe\"}]", // stored as U+FFFD by the library's decoder
			} {
				c := h.dialClient(t).joined(ChatNamespace)
				c.send(p)
				// A join of another namespace answered (or the connection
				// closed) paces the loop; the packet itself is handled on
				// the /chat socket's queue, before that socket closes
				// (TestEmitThenLeave).
				_ = c.ws.WriteMessage(websocket.TextMessage, []byte("40"+NotificationsNamespace+","))
				for {
					got, err := c.read()
					if err != nil || strings.HasPrefix(got, "40"+NotificationsNamespace+",") {
						break
					}
				}
				_ = c.ws.Close()
			}
			// A binary EVENT waits for its attachments: the text packet
			// after it is refused and the connection closed, or it waits
			// for the ping timeout; either way nothing is stored.
			for _, p := range []string{
				`451-/chat,["message",{"_placeholder":true,"num":0}]`,
				`459999-/chat,["message",{"_placeholder":true,"num":99}]`,
			} {
				c := h.dialClient(t).joined(ChatNamespace)
				c.send(p)
				_ = c.ws.WriteMessage(websocket.BinaryMessage, []byte("not an event"))
				_ = c.ws.Close()
			}
			// Two of them are stored as messages: a JSON value then anything
			// is what the library's decoder reads, and it replaces invalid
			// UTF-8 with U+FFFD before Kiln sees the text (on /events
			// invalid UTF-8 is refused; here it cannot be told apart).
			storedWant.Add(2)
		}},
		{"wrong namespaces", func(t *testing.T) {
			for _, nsp := range []string{"/nope", "/chat/../notifications", "/" + strings.Repeat("n", 10000), "/CHAT"} {
				c := h.dialClient(t)
				c.send("40" + nsp + ",")
				got, err := c.read()
				if err == nil { // refused with a reason, or the connection closed
					require.True(t, strings.HasPrefix(got, "44"), "connect to %.40q: %.80q", nsp, got)
					require.NotContains(t, got, strings.Repeat("n", 100), "the namespace is not echoed")
				}
				_ = c.ws.Close()
			}
			c := h.dialClient(t)
			// Emitting to a namespace never joined stores and relays
			// nothing (the library may close the connection for it).
			for _, p := range []string{
				string(chatPacket(t, "never joined", 0)),
				`42` + NotificationsNamespace + `,["order:update",{"orderId":"o","status":"s"}]`,
				"40" + ChatNamespace + ",",
			} {
				if c.ws.WriteMessage(websocket.TextMessage, []byte(p)) != nil {
					break
				}
			}
			_, _ = c.read()
		}},
		{"handshake abuse", func(t *testing.T) {
			for _, q := range []string{
				"?EIO=3&transport=polling", "?EIO=x&transport=polling", "?transport=polling", "?EIO=4&transport=bogus",
				"?EIO=4", "?EIO=4&transport=polling&sid=bogus", "?EIO=4&transport=polling&sid=" + strings.Repeat("s", 4000),
				"?EIO=4&transport=polling&sid=%3Cscript%3E", "?EIO=4&transport=websocket", "?EIO=4&transport=webtransport",
			} {
				resp, body := h.get(t, Path+q)
				require.True(t, resp.StatusCode >= 400 && resp.StatusCode < 500, "GET %.60s: %d %.200s", q, resp.StatusCode, body)
				require.NotContains(t, body, "<script>", "GET %.60s", q)
				require.NotContains(t, body, strings.Repeat("s", 100), "GET %.60s: the sid is echoed", q)
			}
			resp, _ := h.do(t, "POST", Path+"?EIO=4&transport=polling", "40/chat,")
			require.Equal(t, 400, resp.StatusCode, "a handshake is GET only")
			resp, _ = h.do(t, "DELETE", Path+"?EIO=4&transport=polling", "")
			require.Equal(t, 400, resp.StatusCode)
			// A WebSocket upgrade with a bad key and version, and one that
			// names a polling session it does not own.
			for _, hdr := range []string{
				"Sec-WebSocket-Version: 12\r\nSec-WebSocket-Key: x\r\n",
				"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
			} {
				for _, q := range []string{"?EIO=4&transport=websocket", "?EIO=4&transport=websocket&sid=" + h.pollingSession(t) + "x"} {
					conn, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
					require.NoError(t, err)
					require.NoError(t, conn.SetDeadline(time.Now().Add(2*time.Minute)))
					_, err = fmt.Fprintf(conn, "GET %s%s HTTP/1.1\r\nHost: kiln\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n%s\r\n", Path, q, hdr)
					require.NoError(t, err)
					line, _ := bufio.NewReader(conn).ReadString('\n')
					_ = conn.Close()
					if strings.Contains(hdr, "Version: 12") || strings.Contains(q, "sid=") {
						require.NotContains(t, line, " 101 ", "%s %q", q, hdr)
					}
				}
			}
			// Abandoned handshakes: 1,000 sessions asked for at once and
			// never used. Past SOCKETIO_HANDSHAKE_RATE (500 a second,
			// bursts of 500) they are refused 429 naming it.
			var opened, refused int
			for range 1000 {
				resp, body := h.get(t, Path+"?EIO=4&transport=polling")
				switch resp.StatusCode {
				case http.StatusOK:
					opened++
				case http.StatusTooManyRequests:
					require.Contains(t, body, "SOCKETIO_HANDSHAKE_RATE")
					refused++
				default:
					t.Fatalf("handshake answered %d: %s", resp.StatusCode, body)
				}
			}
			t.Logf("abandoned handshakes: %d opened, %d refused", opened, refused)
			require.Positive(t, opened)
		}},
		{"flooding clients", func(t *testing.T) {
			// 100 writers send 20 messages of 15 KB each while storing is
			// held: the queue takes SOCKETIO_CHAT_QUEUE_BYTES, the rest is
			// refused "server busy" at once; then storing resumes. No
			// refused message is stored, no accepted one is lost.
			start := h.stored(t, chatMessage)
			var writes, reads sync.WaitGroup
			var ok, busy atomic.Uint64
			text := strings.Repeat("f", 15<<10)
			h.hold()
			for range 100 {
				c := h.dialClient(t).joined(ChatNamespace)
				writes.Add(1)
				reads.Go(func() {
					for i := 1; i <= 20; i++ {
						if c.ws.WriteMessage(websocket.TextMessage, chatPacket(t, text, i)) != nil {
							break
						}
					}
					writes.Done()
					got, _ := c.tryAcks(ChatNamespace, 20) // a client cut as a slow reader loses the rest
					for _, a := range got {
						if e, refused := a["error"].(string); !refused {
							ok.Add(1)
						} else if strings.Contains(e, "server busy") {
							busy.Add(1)
						}
					}
				})
			}
			writes.Wait()
			require.Eventually(t, func() bool { return busy.Load() > 0 }, 2*time.Minute, 10*time.Millisecond)
			h.release()
			reads.Wait()
			stored := h.stored(t, chatMessage) - start
			t.Logf("flood: %d acknowledged stored, %d refused busy, %d in the stream", ok.Load(), busy.Load(), stored)
			// A message JetStream confirmed late is answered "may be stored".
			require.GreaterOrEqual(t, stored, ok.Load(), "an acknowledged message is stored")
			require.LessOrEqual(t, stored, 2000-busy.Load(), "a refused message is not stored")
			require.Less(t, stored, uint64(700), "the queue held about SOCKETIO_CHAT_QUEUE_BYTES (8 MiB) of them")
			storedWant.Add(stored)

			// One writer floods order:update: a burst of 10 is relayed,
			// the rest is refused.
			c := h.dialClient(t).joined(NotificationsNamespace)
			for i := 1; i <= 100; i++ {
				c.emit(NotificationsNamespace, OrderUpdateEvent, map[string]any{"orderId": "o", "status": "flood"}, i)
			}
			relayed := 0
			for _, a := range c.acks(NotificationsNamespace, 100) {
				if a["relayed"] == true {
					relayed++
				}
			}
			require.LessOrEqual(t, relayed, 20, "SOCKETIO_ORDER_UPDATE_RATE (10 a second, bursts of 10)")
		}},
	}

	h.dialClient(t).joined(ChatNamespace) // the server's first client is in the baseline
	baseline := heapInUse()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			storedWant.Store(0)
			maybe := uint64(0)
			before := h.stored(t, chatMessage)
			tt.run(t)
			// Still answering: a new client connects and its message is stored.
			// A probe seen closed (1006) right after the oversized cases
			// under load is retried once on a new connection and logged:
			// not yet explained (see the note in the report of issue 21).
			for try := 1; ; try++ {
				probe := h.dialClient(t).joined(ChatNamespace)
				probe.emit(ChatNamespace, MessageEvent, map[string]any{"text": fmt.Sprintf("probe %d after %s", try, tt.name)}, 1)
				got, err := probe.tryAcks(ChatNamespace, 1)
				_ = probe.ws.Close()
				if err != nil && try == 1 {
					t.Logf("probe 1 after %q: %v; retrying on a new connection", tt.name, err)
					maybe++ // it may have been stored before the connection closed
					continue
				}
				require.NoError(t, err)
				require.NotContains(t, got[1], "error")
				break
			}
			storedWant.Add(1)
			// Memory returns near its baseline once the clients are gone.
			var heap uint64
			require.Eventually(t, func() bool {
				heap = heapInUse()
				return heap < baseline+64<<20
			}, 3*time.Minute, 100*time.Millisecond, "heap %d MB, baseline %d MB", heap>>20, baseline>>20)
			t.Logf("heap %d MB (baseline %d MB)", heap>>20, baseline>>20)
			var stored uint64
			require.Eventually(t, func() bool {
				stored = h.stored(t, chatMessage)
				return stored >= before+storedWant.Load()
			}, 2*time.Minute, 50*time.Millisecond)
			require.LessOrEqual(t, stored, before+storedWant.Load()+maybe, "stored chat messages")
		})
	}
}
