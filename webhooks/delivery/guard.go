package delivery

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// Guard refuses connections to addresses a webhook must not reach
// (loopback, private, link-local incl. cloud metadata, CGNAT, multicast,
// unspecified) unless a network of Allow contains them. It checks the
// resolved address at connect time, so DNS cannot point around it.
type Guard struct {
	Allow []netip.Prefix
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// why names the range addr is refused for, "" when it may be reached.
func (g Guard) why(addr netip.Addr) string {
	addr = addr.Unmap()
	for _, p := range g.Allow {
		if p.Contains(addr) {
			return ""
		}
	}
	switch {
	case addr.IsLoopback():
		return "loopback"
	case addr.IsPrivate():
		return "private"
	case addr.IsLinkLocalUnicast(), addr.IsLinkLocalMulticast():
		return "link-local (includes cloud metadata)"
	case cgnat.Contains(addr):
		return "shared (CGNAT)"
	case addr.IsUnspecified():
		return "unspecified"
	case addr.IsMulticast(), addr.IsInterfaceLocalMulticast():
		return "multicast"
	}
	return ""
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
