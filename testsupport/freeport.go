package testsupport

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"strings"
	"testing"
)

// FreePort returns a TCP port on 127.0.0.1 that was free at the time of the
// call. The port is released before FreePort returns, so another process may
// grab it in between; callers that start a server on it should retry on
// "address already in use".
func FreePort(t testing.TB) int {
	t.Helper()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testsupport: finding a free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatalf("testsupport: releasing free port %d: %v", port, err)
	}
	return port
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
