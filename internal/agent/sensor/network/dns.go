package network

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"time"
)

// dnsRecordSize is sizeof(struct dns_msg) in bpf/network.bpf.c: u16 kind
// (6), u16 len, u32 padding, then 512 bytes of which len hold the start of
// a DNS message received from port 53. The ring buffer carries both record
// types; they are told apart by size.
const dnsRecordSize = 520

var errDNS = errors.New("malformed DNS message")

// parseDNS reads a DNS response (RFC 1035 section 4.1) and calls fn with
// the first question's name for every A and AAAA answer. Names are
// lower-cased; compression pointers are followed at most 32 times and only
// backwards; a name of other than printable ASCII, or any length that runs
// past msg, is an error. A truncated message (the kernel copies 512 bytes)
// yields the answers that fit.
func parseDNS(msg []byte, fn func(name string, addr netip.Addr, ttl uint32)) error {
	if len(msg) < 12 {
		return errDNS
	}
	be := binary.BigEndian
	flags := be.Uint16(msg[2:])
	if flags&0x8000 == 0 || flags&0x000f != 0 { // not a response, or an error
		return nil
	}
	qd, an := int(be.Uint16(msg[4:])), int(be.Uint16(msg[6:]))
	if qd == 0 {
		return nil
	}
	off := 12
	var qname string
	for i := 0; i < qd; i++ {
		name, next, err := dnsName(msg, off)
		if err != nil {
			return err
		}
		if i == 0 {
			qname = name
		}
		off = next + 4
		if off > len(msg) {
			return errDNS
		}
	}
	if qname == "" {
		return nil
	}
	for i := 0; i < an; i++ {
		_, next, err := dnsName(msg, off)
		if err != nil {
			return nil // truncated: keep what was read
		}
		if next+10 > len(msg) {
			return nil
		}
		typ, class := be.Uint16(msg[next:]), be.Uint16(msg[next+2:])
		ttl := be.Uint32(msg[next+4:])
		rdlen := int(be.Uint16(msg[next+8:]))
		rd := next + 10
		if rd+rdlen > len(msg) {
			return nil
		}
		if class == 1 {
			switch {
			case typ == 1 && rdlen == 4:
				fn(qname, netip.AddrFrom4([4]byte(msg[rd:rd+4])), ttl)
			case typ == 28 && rdlen == 16:
				fn(qname, netip.AddrFrom16([16]byte(msg[rd:rd+16])).Unmap(), ttl)
			}
		}
		off = rd + rdlen
	}
	return nil
}

// dnsName reads the name at off and returns it and the offset after it in
// the message (after the first pointer when compressed).
func dnsName(msg []byte, off int) (string, int, error) {
	var b strings.Builder
	next := -1
	for jumps := 0; ; {
		if off >= len(msg) {
			return "", 0, errDNS
		}
		l := int(msg[off])
		switch {
		case l == 0:
			if next < 0 {
				next = off + 1
			}
			return b.String(), next, nil
		case l&0xc0 == 0xc0:
			if off+1 >= len(msg) {
				return "", 0, errDNS
			}
			ptr := int(binary.BigEndian.Uint16(msg[off:]) & 0x3fff)
			if next < 0 {
				next = off + 2
			}
			if ptr >= off || jumps >= 32 {
				return "", 0, errDNS
			}
			jumps++
			off = ptr
		case l&0xc0 != 0:
			return "", 0, errDNS
		default:
			if off+1+l > len(msg) || b.Len()+l+1 > 255 {
				return "", 0, errDNS
			}
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			for _, c := range msg[off+1 : off+1+l] {
				if c <= ' ' || c > '~' {
					return "", 0, errDNS
				}
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				b.WriteByte(c)
			}
			off += 1 + l
		}
	}
}

// hosts remembers which name each address was resolved from, so a
// connection to it can carry DestinationHostname. It is bounded; only the
// sensor's reader goroutine uses it.
type hosts struct {
	max int
	m   map[netip.Addr]hostEntry
}

type hostEntry struct {
	name    string
	expires time.Time
}

// An answer is kept for its TTL, but at least minHostTTL (programs connect
// a while after resolving, and cache answers themselves) and at most a day.
const (
	minHostTTL = 2 * time.Minute
	maxHostTTL = 24 * time.Hour
)

func newHosts(max int) *hosts { return &hosts{max: max, m: map[netip.Addr]hostEntry{}} }

// learn records the answers of one DNS message.
func (h *hosts) learn(now time.Time, msg []byte) {
	parseDNS(msg, func(name string, a netip.Addr, ttl uint32) {
		if len(h.m) >= h.max {
			for k, e := range h.m {
				if now.After(e.expires) {
					delete(h.m, k)
				}
			}
			if len(h.m) >= h.max {
				clear(h.m)
			}
		}
		d := min(max(time.Duration(ttl)*time.Second, minHostTTL), maxHostTTL)
		h.m[a] = hostEntry{name: name, expires: now.Add(d)}
	})
}

// name returns the name a was last resolved from, "" when unknown or
// expired.
func (h *hosts) name(now time.Time, a netip.Addr) string {
	e, ok := h.m[a]
	if !ok || now.After(e.expires) {
		return ""
	}
	return e.name
}
