package projector

import (
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/readmodel"
	"github.com/kilnhq/kiln/testsupport"
)

// hangProxy forwards TCP to target until hang is set: then it swallows
// every byte both ways and answers nothing, like a store that stopped
// responding without closing its connections.
type hangProxy struct {
	ln     net.Listener
	target string
	hang   atomic.Bool
}

func startHangProxy(t *testing.T, target string) *hangProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &hangProxy{ln: ln, target: target}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *hangProxy) serve(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer s.Close()
	done := make(chan struct{}, 2)
	go func() { p.pump(s, c); done <- struct{}{} }()
	go func() { p.pump(c, s); done <- struct{}{} }()
	<-done
}

// pump copies src to dst, dropping what arrives while hanging.
func (p *hangProxy) pump(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.hang.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Issue 12 item 1: a store that hangs (accepts, never answers) makes the
// projector back off, report it, and resume by itself when it answers.
func TestHangingStoreIsWaitedOutAndResumed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.cfg.MaxDeliver = 3
	e.cfg.PoisonAfter = 2
	link := startHangProxy(t, e.redisSrv.Addr())
	rdb := redis.NewClient(&redis.Options{Addr: link.ln.Addr().String(), ReadTimeout: time.Second, WriteTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	svc, _ := e.startWith(t, Deps{
		JetStream: e.js, Mongo: e.db, Redis: rdb, Metrics: prometheus.NewRegistry(), Log: testsupport.Logger(t),
	}, nil)
	e.publish(t, 300)
	e.requireExact(t)

	link.hang.Store(true)
	e.publish(t, 400)
	require.Eventually(t, func() bool {
		err := svc.Ready(context.Background())
		return err != nil && strings.Contains(err.Error(), "counters waits for redis")
	}, 3*time.Minute, 50*time.Millisecond, "a hanging Redis shows as a stalled projection")
	time.Sleep(5 * time.Second) // the hang being tested: many AckWaits (1s) pass
	link.hang.Store(false)

	e.requireExact(t)
	errs, err := readmodel.NewLedger(e.db).Errors(context.Background(), 10)
	require.NoError(t, err)
	require.Empty(t, errs, "a hanging store is never poison")
}
