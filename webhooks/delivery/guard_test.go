package delivery_test

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kilnhq/kiln/webhooks/delivery"
)

func TestGuardRefusesEveryNonPublicRange(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr    string
		refused bool
	}{
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"2606:4700:4700::1111", false},
		{"127.0.0.1", true},
		{"::1", true},
		{"10.1.2.3", true},
		{"172.16.0.1", true},
		{"192.168.1.1", true},
		{"169.254.169.254", true},
		{"fe80::1", true},
		{"fd00::1", true},
		{"100.64.0.1", true},
		{"0.0.0.0", true},
		{"0.1.2.3", true},
		{"::", true},
		{"224.0.0.1", true},
		{"ff02::1", true},
		// IETF protocol assignments (incl. DS-Lite 192.0.0.0/29), benchmarking, reserved and broadcast.
		{"192.0.0.1", true},
		{"192.0.0.170", true},
		{"198.18.0.1", true},
		{"198.19.255.254", true},
		{"240.0.0.1", true},
		{"255.255.255.255", true},
		// IPv4-mapped IPv6 of a refused address is refused.
		{"::ffff:127.0.0.1", true},
		{"::ffff:10.0.0.1", true},
		{"::ffff:198.18.0.1", true},
		{"::ffff:8.8.8.8", false},
		// NAT64 (RFC 6052 well-known prefix): the embedded IPv4 address
		// decides, so a DNS64 network still reaches public hosts.
		{"64:ff9b::7f00:1", true},       // 127.0.0.1
		{"64:ff9b::a9fe:a9fe", true},    // 169.254.169.254
		{"64:ff9b::c0a8:101", true},     // 192.168.1.1
		{"64:ff9b::c612:1", true},       // 198.18.0.1
		{"64:ff9b::808:808", false},     // 8.8.8.8
		{"64:ff9b:1::a00:1", true},      // local-use NAT64 (RFC 8215): where the IPv4 sits is the network's choice
		{"::7f00:1", true},              // IPv4-compatible (deprecated)
		{"fec0::1", true},               // site-local (deprecated)
		{"64:ff9b::ffff:ffff", true},    // 255.255.255.255
		{"::ffff:64:ff9b:7f00:1", true}, // not a valid mapping of anything public either
	} {
		t.Run(tc.addr, func(t *testing.T) {
			t.Parallel()
			err := delivery.Guard{}.Control("tcp", net.JoinHostPort(tc.addr, "443"), nil)
			if !tc.refused {
				require.NoError(t, err)
				return
			}
			var refused *delivery.RefusedError
			require.True(t, errors.As(err, &refused), "%s must be refused, got %v", tc.addr, err)
		})
	}
}

func TestGuardAllowListOpensARange(t *testing.T) {
	t.Parallel()
	g := delivery.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("10.0.0.0/8")}}
	for _, addr := range []string{"198.18.0.1", "::ffff:198.18.0.1", "10.1.1.1", "64:ff9b::a01:101"} {
		require.NoError(t, g.Control("tcp", net.JoinHostPort(addr, "443"), nil), addr)
	}
	require.Error(t, g.Control("tcp", net.JoinHostPort("192.0.0.1", "443"), nil))
}
