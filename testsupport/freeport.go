package testsupport

import (
	"crypto/rand"
	"encoding/hex"
	mrand "math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// FreePort returns a TCP port on 127.0.0.1 that was free at the time of the
// call. The port is released before FreePort returns, so another process may
// grab it in between; callers that start a server on it should retry on
// "address already in use".
//
// The port is picked at random below the kernel's ephemeral range (where
// the local ports of outgoing connections come from), and never twice in
// one test binary: a port from that range, released and then taken as the
// local end of some client's connection before the server bound it, made
// servers fail to start under load ("bind: address already in use").
func FreePort(t testing.TB) int {
	t.Helper()

	lo, hi := 10000, ephemeralLow()
	for range 1000 {
		port := lo + mrand.IntN(hi-lo)
		if !handOut(port) {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		if err := l.Close(); err != nil {
			t.Fatalf("testsupport: releasing free port %d: %v", port, err)
		}
		return port
	}
	t.Fatalf("testsupport: no free port in [%d, %d) after 1000 tries", lo, hi)
	return 0
}

var (
	portsMu   sync.Mutex
	handedOut = map[int]bool{}
	ephemeral int
)

// handOut records port as given to a caller; false if it was before.
func handOut(port int) bool {
	portsMu.Lock()
	defer portsMu.Unlock()
	if handedOut[port] {
		return false
	}
	handedOut[port] = true
	return true
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux:
// net.ipv4.ip_local_port_range; 32768 when it cannot be read).
func ephemeralLow() int {
	portsMu.Lock()
	defer portsMu.Unlock()
	if ephemeral == 0 {
		ephemeral = 32768
		if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
			if f := strings.Fields(string(b)); len(f) == 2 {
				if n, err := strconv.Atoi(f[0]); err == nil && n > 11000 {
					ephemeral = n
				}
			}
		}
	}
	return ephemeral
}

// UniqueName returns a name derived from t.Name() with a random suffix,
// made of [a-zA-Z0-9_-] only and at most 63 characters long. It is suitable
// for database, stream, subject-token and key-prefix names that must not
// collide between parallel tests.
func UniqueName(t testing.TB) string {
	t.Helper()

	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("testsupport: reading random bytes: %v", err)
	}
	suffix := hex.EncodeToString(b[:])

	prefix := sanitizeName(t.Name())
	const maxPrefix = 63 - 1 - 12
	if len(prefix) > maxPrefix {
		prefix = prefix[len(prefix)-maxPrefix:]
	}
	if prefix == "" {
		prefix = "t"
	}
	return prefix + "_" + suffix
}

// sanitizeName maps every character outside [a-zA-Z0-9_-] to '_' (FerretDB
// database names, for example, must match ^[a-zA-Z0-9_-]{1,63}$).
func sanitizeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			return r
		default:
			return '_'
		}
	}, s)
}
