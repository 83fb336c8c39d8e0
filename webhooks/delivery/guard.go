package delivery

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// Guard refuses connections to addresses a webhook must not reach
// (loopback, private, link-local incl. cloud metadata, CGNAT, multicast,
// unspecified, and the special-purpose ranges of the IANA registries)
// unless a network of Allow contains them. It checks the resolved address
// at connect time, so DNS cannot point around it. An IPv4-mapped IPv6
// address is checked as its IPv4 address, and so is a NAT64 address of the
// well-known prefix 64:ff9b::/96 (RFC 6052): a DNS64 network still reaches
// public hosts, and no translator is asked for a refused one.
type Guard struct {
	Allow []netip.Prefix
}

// nat64 is the well-known NAT64 prefix; its last 32 bits are the IPv4 address.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// refused are the ranges the netip predicates do not cover, by what they are.
var refused = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (CGNAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved (incl. broadcast)"},
	// Local-use NAT64 (RFC 8215): where the IPv4 address sits depends on
	// the network's prefix length, so the whole range is refused.
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
	// IPv4-compatible and the rest of the IETF-reserved block (mapped
	// addresses and 64:ff9b::/96 are checked as IPv4 before this).
	{netip.MustParsePrefix("::/8"), "reserved IPv6"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
}

// why names the range addr is refused for, "" when it may be reached.
func (g Guard) why(addr netip.Addr) string {
	addr = addr.Unmap()
	if g.allowed(addr) {
		return ""
	}
	if nat64.Contains(addr) {
		b := addr.As16()
		if why := g.why(netip.AddrFrom4([4]byte(b[12:]))); why != "" {
			return "NAT64 of a " + why
		}
		return ""
	}
	switch {
	case addr.IsLoopback():
		return "loopback"
	case addr.IsPrivate():
		return "private"
	case addr.IsLinkLocalUnicast(), addr.IsLinkLocalMulticast():
		return "link-local (includes cloud metadata)"
	case addr.IsUnspecified():
		return "unspecified"
	case addr.IsMulticast(), addr.IsInterfaceLocalMulticast():
		return "multicast"
	}
	for _, r := range refused {
		if r.prefix.Contains(addr) {
			return r.why
		}
	}
	return ""
}

// allowed reports whether a network of Allow contains addr.
func (g Guard) allowed(addr netip.Addr) bool {
	for _, p := range g.Allow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Control is a net.Dialer Control function enforcing the guard.
func (g Guard) Control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("webhook guard: %w", err)
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("webhook guard: %q is not an IP address", host)
	}
	if why := g.why(addr); why != "" {
		return &RefusedError{Addr: addr, Range: why}
	}
	return nil
}

// RefusedError is a connection the guard refused.
type RefusedError struct {
	Addr  netip.Addr
	Range string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refused to connect to %s: a %s address (allow it with WEBHOOKS_ALLOW_NETWORKS)", e.Addr, e.Range)
}

// ParsePrefixes reads CIDRs (a bare address is a /32 or /128).
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR or IP address", s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
