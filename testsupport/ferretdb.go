package testsupport

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// mongoStartTimeout bounds how long StartMongo waits for FerretDB to print
// its URI.
const mongoStartTimeout = 30 * time.Second

// mongoStopTimeout bounds how long cleanup waits for FerretDB to exit after
// its stdin is closed before it is killed.
const mongoStopTimeout = 10 * time.Second

// Mongo is a MongoDB-compatible server: FerretDB v1 with the SQLite handler,
// running as a child process (see cmd/ferretdb-runner) on 127.0.0.1.
type Mongo struct {
	uri string
}

// StartMongo starts FerretDB on a free port with its data in t.TempDir()
// and stops it when the test finishes. The runner binary is built once per
// test binary (and cached in os.TempDir()).
func StartMongo(t testing.TB) *Mongo {
	t.Helper()

	bin := ferretDBRunner(t)
	cmd := exec.Command(bin, "-dir", t.TempDir())
	stderr := &LogBuffer{}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("testsupport: ferretdb-runner stdin: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("testsupport: ferretdb-runner stdout: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testsupport: starting %s: %v", bin, err)
	}

	// Read the URI line, drain stdout until the runner exits, then reap it
	// (Wait must not run before reads from the pipe are done).
	uri := make(chan string, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		uri <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		if t.Failed() && stderr.String() != "" {
			t.Logf("testsupport: ferretdb-runner stderr:\n%s", stderr)
		}
		_ = stdin.Close() // the runner shuts down on stdin EOF
		select {
		case <-exited:
		case <-time.After(mongoStopTimeout):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("testsupport: ferretdb-runner did not stop within %s; killed. stderr:\n%s",
				mongoStopTimeout, stderr)
		}
	})

	select {
	case u := <-uri:
		if !strings.HasPrefix(u, "mongodb://") {
			<-exited
			t.Fatalf("testsupport: ferretdb-runner failed to start (exit %v); stdout %q; stderr:\n%s",
				cmd.ProcessState, u, stderr)
		}
		return &Mongo{uri: u}
	case <-time.After(mongoStartTimeout):
		t.Fatalf("testsupport: ferretdb-runner printed no URI within %s; stderr:\n%s",
			mongoStartTimeout, stderr)
		return nil
	}
}

// URI returns the MongoDB connection string, e.g. mongodb://127.0.0.1:1234/.
func (m *Mongo) URI() string {
	return m.uri
}

// Client returns a mongo-driver v2 client for the server; it is
// disconnected when the test finishes.
func (m *Mongo) Client(t testing.TB) *mongo.Client {
	t.Helper()
	return m.ClientWith(t, options.Client())
}

// ClientWith is Client with opts (a command monitor, say); their URI is
// the server's.
func (m *Mongo) ClientWith(t testing.TB, opts *options.ClientOptions) *mongo.Client {
	t.Helper()

	c, err := mongo.Connect(opts.ApplyURI(m.uri))
	if err != nil {
		t.Fatalf("testsupport: connecting to FerretDB: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), mongoStopTimeout)
		defer cancel()
		if err := c.Disconnect(ctx); err != nil {
			t.Logf("testsupport: disconnecting from FerretDB: %v", err)
		}
	})
	return c
}

// Database returns a database with a name unique to this call (see
// [UniqueName]) on a new client from Client.
func (m *Mongo) Database(t testing.TB) *mongo.Database {
	t.Helper()

	return m.Client(t).Database(UniqueName(t))
}

// LogBuffer is a bytes.Buffer safe for concurrent writers and readers: a
// log sink for a service under test.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements [io.Writer].
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()

	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()

	return b.buf.String()
}
