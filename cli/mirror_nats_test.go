package cli_test

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/schemas"
	"github.com/kilnhq/kiln/schemas/catalog"
	"github.com/kilnhq/kiln/schemas/idledger"
	"github.com/kilnhq/kiln/testsupport"
)

// domainNATS is an embedded nats-server with a JetStream domain, as the
// DR topology of docs/operations.md ("Disaster recovery") runs them: the
// primary listens for leaf nodes; the DR server connects to it as a leaf.
type domainNATS struct {
	srv      *server.Server
	leafPort int // the primary's leaf node listener; 0 on the DR side
}

func (n *domainNATS) LeafAddr() string { return "127.0.0.1:" + strconv.Itoa(n.leafPort) }

func (n *domainNATS) URL() string { return n.srv.ClientURL() }

// Shutdown stops the server and waits for it; safe to call twice.
func (n *domainNATS) Shutdown() {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
}

// kilnSubjects are the subjects of the mirrored streams: the DR leaf
// connection carries none of them (only the JetStream API of the
// primary's domain and the mirrors' deliveries), so nothing published on
// one side lands in the other's streams.
func kilnSubjects() []string {
	s := []string{schemas.SubjectAll, idledger.SubjectPrefix + ">"}
	return append(s, catalog.StreamConfig(schemas.StreamOptions{}).Subjects...)
}

// startDomainNATS starts a server of JetStream domain. With leafTarget
// "" it listens for leaf nodes (leafPort); else it connects as a leaf node
// to leafTarget (host:port: the primary's leaf port, or a proxy to it).
func startDomainNATS(t *testing.T, domain, leafTarget string) *domainNATS {
	t.Helper()
	opts := &server.Options{
		ServerName:      domain,
		Host:            "127.0.0.1",
		Port:            -1,
		JetStream:       true,
		JetStreamDomain: domain,
		StoreDir:        t.TempDir(),
		NoLog:           true,
		NoSigs:          true,
	}
	n := &domainNATS{}
	if leafTarget == "" {
		n.leafPort = testsupport.FreePort(t)
		// NoAdvertise: a leaf learns no other address of the primary, so
		// a test can cut its link with a proxy.
		opts.LeafNode = server.LeafNodeOpts{Host: "127.0.0.1", Port: n.leafPort, NoAdvertise: true}
	} else {
		u, err := url.Parse("nats-leaf://" + leafTarget)
		require.NoError(t, err)
		opts.LeafNode = server.LeafNodeOpts{
			ReconnectInterval: 100 * time.Millisecond,
			Remotes: []*server.RemoteLeafOpts{{
				URLs: []*url.URL{u}, DenyImports: kilnSubjects(), DenyExports: kilnSubjects(),
			}},
		}
	}
	s, err := server.NewServer(opts)
	require.NoError(t, err)
	s.Start()
	require.True(t, s.ReadyForConnections(10*time.Second), "nats-server of domain %s not ready", domain)
	n.srv = s
	t.Cleanup(n.Shutdown)
	return n
}

// TestMirrorFromAPrimaryGivenADomainLater: a primary that ran without a
// JetStream domain is restarted with one (docs/operations.md, "Disaster
// recovery"): its streams stay, its clients' $JS.API requests still work,
// and the DR side mirrors it.
func TestMirrorFromAPrimaryGivenADomainLater(t *testing.T) {
	ctx := context.Background()
	dir, port, leafPort := t.TempDir(), testsupport.FreePort(t), testsupport.FreePort(t)
	start := func(domain string) *server.Server {
		o := &server.Options{ServerName: "primary", Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir,
			JetStreamDomain: domain, NoLog: true, NoSigs: true}
		if domain != "" {
			o.LeafNode = server.LeafNodeOpts{Host: "127.0.0.1", Port: leafPort, NoAdvertise: true}
		}
		s, err := server.NewServer(o)
		require.NoError(t, err)
		s.Start()
		require.True(t, s.ReadyForConnections(10*time.Second))
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		return s
	}
	publish := func(s *server.Server, n int) {
		nc, err := nats.Connect(s.ClientURL())
		require.NoError(t, err)
		defer nc.Close()
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		_, err = schemas.EnsureStream(ctx, js, schemas.StreamOptions{})
		require.NoError(t, err)
		for i := range n {
			_, err := js.Publish(ctx, schemas.Subject("page_view"), []byte(`{}`), jetstream.WithMsgID(fmt.Sprintf("%s-%d", s.ID(), i)))
			require.NoError(t, err)
		}
	}
	s := start("")
	publish(s, 10)
	s.Shutdown()
	s.WaitForShutdown()
	s = start("kiln-primary")
	publish(s, 1) // through $JS.API, as Kiln's roles do

	dr := startDomainNATS(t, "kiln-dr", "127.0.0.1:"+strconv.Itoa(leafPort))
	require.Eventually(t, func() bool { return dr.srv.NumLeafNodes() == 1 }, time.Minute, 20*time.Millisecond)
	out, err := execute(t, nil, "mirror", "create", "--nats", dr.URL(), "--primary-domain", "kiln-primary")
	require.NoError(t, err, out)
	require.Eventually(t, func() bool { return streamLastSeqAt(t, dr.URL()) == 11 }, time.Minute, 50*time.Millisecond,
		"the mirror holds the events from before the domain and after")
}
