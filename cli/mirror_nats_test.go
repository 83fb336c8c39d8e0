package cli_test

import (
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
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
