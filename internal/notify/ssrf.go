package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// ErrBlocked is returned (wrapped) when the policy refuses an address.
var ErrBlocked = errors.New("blocked by the outbound address policy")

// blocked lists the ranges no notification may reach unless allow-listed:
// this host, private networks, link-local (cloud metadata at
// 169.254.169.254), carrier-grade NAT (Alibaba's metadata at
// 100.100.100.200), unique-local IPv6 (AWS's fd00:ec2::254), and the
// special-purpose ranges that reach any of those by another route.
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are unmapped first, so they
// are checked as the IPv4 address they are.
var blocked = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this network"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (cloud metadata)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"}, // includes 255.255.255.255
	{netip.MustParsePrefix("::/96"), "unspecified, loopback or IPv4-compatible"},
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard"},
	{netip.MustParsePrefix("2001::/32"), "Teredo"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("2002::/16"), "6to4"},
	{netip.MustParsePrefix("fc00::/7"), "unique local"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// Policy decides which addresses notifications may connect to. The zero
// value blocks every range in the list above and allows everything else.
// Allow entries open a CIDR range (an on-premise chat server's network) or
// one host name (exactly as written in the channel's URL or SMTP address,
// case-insensitive) regardless of what it resolves to.
//
// The check runs at dial time on the address the socket is about to
// connect to, after name resolution, for every connection attempt: a name
// that resolved to a public address when the channel was saved and to
// 127.0.0.1 now (DNS rebinding) is refused.
type Policy struct {
	allowNets  []netip.Prefix
	allowHosts map[string]bool
	timeout    time.Duration
}

// NewPolicy parses allow-list entries: CIDRs ("10.20.0.0/16",
// "fd12::/48"), single addresses ("10.20.0.5") or host names
// ("chat.corp.example").
func NewPolicy(allow []string) (*Policy, error) {
	p := &Policy{allowHosts: map[string]bool{}, timeout: 10 * time.Second}
	for _, a := range allow {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if pf, err := netip.ParsePrefix(a); err == nil {
			if pf.Addr().Is4In6() {
				pf = netip.PrefixFrom(pf.Addr().Unmap(), pf.Bits()-96)
			}
			p.allowNets = append(p.allowNets, pf.Masked())
			continue
		}
		if ip, err := netip.ParseAddr(a); err == nil {
			ip = ip.Unmap()
			p.allowNets = append(p.allowNets, netip.PrefixFrom(ip, ip.BitLen()))
			continue
		}
		if strings.Contains(a, "/") || !validHostname(a) {
			return nil, &ConfigError{Msg: fmt.Sprintf("allow-list entry %q is not a CIDR, an IP address or a host name", clipRunes(a, 64))}
		}
		p.allowHosts[strings.ToLower(strings.TrimSuffix(a, "."))] = true
	}
	return p, nil
}

func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Check reports why ip may not be dialled (an error wrapping ErrBlocked),
// or nil. Host allow-list entries are not considered here: they apply by
// name in DialContext.
func (p *Policy) Check(ip netip.Addr) error {
	ip = ip.Unmap().WithZone("")
	for _, a := range p.allowNets {
		if a.Contains(ip) {
			return nil
		}
	}
	if !ip.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrBlocked)
	}
	for _, b := range blocked {
		if b.prefix.Contains(ip) {
			return fmt.Errorf("%w: %s is %s", ErrBlocked, ip, b.why)
		}
	}
	return nil
}

// control is the net.Dialer hook: it runs after resolution, before
// connect(2), with the exact address of this attempt.
func (p *Policy) control(hostAllowed bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		if hostAllowed {
			return nil
		}
		if network != "tcp4" && network != "tcp6" {
			return fmt.Errorf("%w: network %s", ErrBlocked, network)
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: unparsable address %q", ErrBlocked, address)
		}
		return p.Check(ap.Addr())
	}
}

// DialContext connects to addr ("host:port") over TCP if the policy allows
// the address the name resolves to at this moment.
func (p *Policy) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if network != "tcp" && network != "tcp4" && network != "tcp6" {
		return nil, fmt.Errorf("%w: network %s", ErrBlocked, network)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{
		Timeout:   p.timeout,
		KeepAlive: 30 * time.Second,
		Control:   p.control(p.allowHosts[strings.ToLower(strings.TrimSuffix(host, "."))]),
	}
	return d.DialContext(ctx, network, addr)
}
