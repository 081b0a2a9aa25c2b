package network

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vigil-edr/vigil/internal/event"
)

// encodeRecord is the inverse of decodeRecord, for tests: it writes r as
// the eBPF program would.
func encodeRecord(r *record, family uint16) []byte {
	b := make([]byte, recordSize)
	ne := binary.NativeEndian
	ne.PutUint64(b[0:], r.Mono)
	ne.PutUint64(b[8:], r.StartTime)
	for i, v := range []uint32{r.PID, r.TID, r.PPID, r.UID, r.GID, r.Repeats, uint32(r.Ret)} {
		ne.PutUint32(b[16+4*i:], v)
	}
	for i, v := range []uint16{r.Kind, family, r.Protocol, r.Local.Port(), r.Remote.Port(), uint16(len(r.Args))} {
		ne.PutUint16(b[44+2*i:], v)
	}
	if family == afInet {
		a, c := r.Local.Addr().As4(), r.Remote.Addr().As4()
		copy(b[56:], a[:])
		copy(b[72:], c[:])
	} else {
		a, c := r.Local.Addr().As16(), r.Remote.Addr().As16()
		copy(b[56:], a[:])
		copy(b[72:], c[:])
	}
	copy(b[88:104], r.Comm)
	copy(b[104:360], r.Exe)
	copy(b[360:], r.Args)
	return b
}

// diagMessage is one SOCK_DIAG_BY_FAMILY message as the kernel sends it.
func diagMessage(family, state uint8, local, remote netip.AddrPort, uid, inode uint32) []byte {
	b := make([]byte, nlmsgHdrLen+inetDiagMsgLen)
	ne := binary.NativeEndian
	ne.PutUint32(b, uint32(len(b)))
	ne.PutUint16(b[4:], sockDiagByFamily)
	m := b[nlmsgHdrLen:]
	m[0], m[1] = family, state
	binary.BigEndian.PutUint16(m[4:], local.Port())
	binary.BigEndian.PutUint16(m[6:], remote.Port())
	la, ra := local.Addr().As16(), remote.Addr().As16()
	if family == afInet {
		l4, r4 := local.Addr().As4(), remote.Addr().As4()
		copy(m[8:], l4[:])
		copy(m[24:], r4[:])
	} else {
		copy(m[8:], la[:])
		copy(m[24:], ra[:])
	}
	ne.PutUint32(m[44:], inode*7)
	ne.PutUint32(m[64:], uid)
	ne.PutUint32(m[68:], inode)
	return b
}

func diagDone() []byte {
	b := make([]byte, nlmsgHdrLen+4)
	binary.NativeEndian.PutUint32(b, uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:], nlmsgDone)
	return b
}

func seedRecord() []byte {
	r := record{Mono: 1, StartTime: 2, PID: 42, TID: 42, PPID: 1, Kind: kindConnect, Protocol: protoTCP,
		Local:  netip.MustParseAddrPort("10.0.0.1:40000"),
		Remote: netip.MustParseAddrPort("203.0.113.9:4444"),
		Comm:   []byte("bash"), Exe: []byte("/usr/bin/bash"), Args: []byte("bash\x00-i\x00")}
	return encodeRecord(&r, afInet)
}

// FuzzDecodeRecord: no ring-buffer record crashes decodeRecord or fill, and
// every event field is valid UTF-8. Seeds: testdata/fuzz/FuzzDecodeRecord.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(seedRecord())
	f.Fuzz(func(t *testing.T, b []byte) {
		// Records have one size; padding short inputs keeps the fuzzer's
		// minimiser (which shortens inputs) from stalling on the length
		// check. The short case itself is in TestDecodeRecord.
		if len(b) < recordSize {
			b = append(b, make([]byte, recordSize-len(b))...)
		}
		var r record
		if decodeRecord(b, &r) != nil {
			return
		}
		var ev event.Event
		p := &proc{image: validUTF8(string(r.Exe)), cmdline: argv(r.Args)}
		fill(&ev, time.Unix(0, 0), &r, p, "example.org")
		for _, fl := range ev.Fields {
			if !utf8.ValidString(fl.Value) {
				t.Fatalf("%s: invalid UTF-8 %q", fl.Name, fl.Value)
			}
		}
		if !r.Local.Addr().IsValid() || !r.Remote.Addr().IsValid() {
			t.Fatal("decoded an invalid address")
		}
	})
}

// FuzzParseDiag: no netlink buffer crashes parseDiag, and every socket it
// reports has valid addresses. Seeds: testdata/fuzz/FuzzParseDiag.
func FuzzParseDiag(f *testing.F) {
	msg := diagMessage(afInet6, tcpListen, netip.MustParseAddrPort("[::]:22"), netip.MustParseAddrPort("[::]:0"), 0, 1234)
	f.Add(append(msg, diagDone()...))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseDiag(b, protoTCP, func(s *sock) {
			if !s.Local.Addr().IsValid() || !s.Remote.Addr().IsValid() {
				t.Fatal("invalid address")
			}
		})
	})
}

// TestDecodeRecord: a record the eBPF program writes comes back field for
// field, IPv4-mapped IPv6 addresses as IPv4, and malformed ones are refused.
func TestDecodeRecord(t *testing.T) {
	var r record
	if err := decodeRecord(seedRecord(), &r); err != nil {
		t.Fatal(err)
	}
	if r.PID != 42 || r.Kind != kindConnect || r.Remote.String() != "203.0.113.9:4444" || string(r.Exe) != "/usr/bin/bash" || argv(r.Args) != "bash -i" {
		t.Errorf("decoded %+v", r)
	}
	mapped := record{Kind: kindAccept, Protocol: protoTCP, Local: netip.MustParseAddrPort("[::ffff:127.0.0.1]:80"), Remote: netip.MustParseAddrPort("[::ffff:127.0.0.2]:5000")}
	if err := decodeRecord(encodeRecord(&mapped, afInet6), &r); err != nil || r.Local.String() != "127.0.0.1:80" || !r.Remote.Addr().Is4() {
		t.Errorf("mapped: %v %v", r.Local, err)
	}
	bad := map[string]func([]byte) []byte{
		"short":  func(b []byte) []byte { return b[:recordSize-1] },
		"kind":   func(b []byte) []byte { b[44] = 9; return b },
		"family": func(b []byte) []byte { b[46] = 1; return b },
		"args":   func(b []byte) []byte { binary.NativeEndian.PutUint16(b[54:], 257); return b },
	}
	for name, mut := range bad {
		if err := decodeRecord(mut(seedRecord()), &r); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

// TestParseDiag: sockets of a multi-message dump, and the errors a broken
// buffer gives.
func TestParseDiag(t *testing.T) {
	buf := append(diagMessage(afInet, tcpEstablished, netip.MustParseAddrPort("127.0.0.1:22"), netip.MustParseAddrPort("127.0.0.1:5555"), 1000, 77),
		diagMessage(afInet6, tcpListen, netip.MustParseAddrPort("[::1]:80"), netip.MustParseAddrPort("[::]:0"), 0, 78)...)
	buf = append(buf, diagDone()...)
	var got []sock
	done, err := parseDiag(buf, protoTCP, func(s *sock) { got = append(got, *s) })
	if err != nil || !done || len(got) != 2 {
		t.Fatalf("done=%v err=%v got=%d", done, err, len(got))
	}
	if got[0].Local.String() != "127.0.0.1:22" || got[0].Remote.Port() != 5555 || got[0].UID != 1000 || got[0].Inode != 77 || got[0].State != tcpEstablished {
		t.Errorf("first %+v", got[0])
	}
	if got[1].Local.String() != "[::1]:80" || got[1].State != tcpListen {
		t.Errorf("second %+v", got[1])
	}
	for name, b := range map[string][]byte{
		"truncated header": buf[:10],
		"length past end":  buf[:nlmsgHdrLen+10],
		"short body": func() []byte {
			b := diagMessage(afInet, 1, netip.MustParseAddrPort("1.2.3.4:1"), netip.MustParseAddrPort("1.2.3.4:2"), 0, 0)[:40]
			binary.NativeEndian.PutUint32(b, 40)
			return b
		}(),
	} {
		if _, err := parseDiag(b, protoTCP, func(*sock) {}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// dnsAnswer builds a DNS response for name with one A or AAAA record per
// address, each pointing back at the question's name (compression).
func dnsAnswer(id uint16, name string, ttl uint32, addrs ...netip.Addr) []byte {
	be := binary.BigEndian
	b := be.AppendUint16(nil, id)
	b = be.AppendUint16(b, 0x8180) // response, recursion desired and available, no error
	b = be.AppendUint16(b, 1)
	b = be.AppendUint16(b, uint16(len(addrs)))
	b = be.AppendUint32(b, 0)
	for _, l := range strings.Split(name, ".") {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	b = append(b, 0)
	b = be.AppendUint16(b, 1) // QTYPE A
	b = be.AppendUint16(b, 1) // QCLASS IN
	for _, a := range addrs {
		b = be.AppendUint16(b, 0xc00c)
		typ := uint16(1)
		if a.Is6() {
			typ = 28
		}
		b = be.AppendUint16(b, typ)
		b = be.AppendUint16(b, 1)
		b = be.AppendUint32(b, ttl)
		b = be.AppendUint16(b, uint16(a.BitLen()/8))
		b = append(b, a.AsSlice()...)
	}
	return b
}

// FuzzParseDNS: no message crashes parseDNS, and every name it reports is
// lower-case printable ASCII of at most 255 bytes. Seeds:
// testdata/fuzz/FuzzParseDNS.
func FuzzParseDNS(f *testing.F) {
	f.Add(dnsAnswer(7, "Tunnel.US.ngrok.com", 60, netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("2001:db8::7")))
	f.Fuzz(func(t *testing.T, msg []byte) {
		parseDNS(msg, func(name string, a netip.Addr, _ uint32) {
			if len(name) == 0 || len(name) > 255 || strings.ToLower(name) != name || !a.IsValid() {
				t.Fatalf("name %q addr %v", name, a)
			}
			for _, c := range []byte(name) {
				if c <= ' ' || c > '~' {
					t.Fatalf("name %q", name)
				}
			}
		})
	})
}

// TestParseDNS: answers of a compressed response; what is refused.
func TestParseDNS(t *testing.T) {
	msg := dnsAnswer(7, "Tunnel.US.ngrok.com", 60, netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("2001:db8::7"))
	var got []string
	if err := parseDNS(msg, func(n string, a netip.Addr, ttl uint32) { got = append(got, fmt.Sprint(n, " ", a, " ", ttl)) }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"tunnel.us.ngrok.com 203.0.113.7 60", "tunnel.us.ngrok.com 2001:db8::7 60"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	loop := bytes.Clone(msg)
	loop[12] = 0xc0 // the question's name points at itself
	loop[13] = 12
	query := bytes.Clone(msg)
	query[2] = 0x01 // QR clear: a query, not an answer
	for name, m := range map[string][]byte{"short": msg[:11], "self pointer": loop, "truncated question": msg[:20]} {
		if err := parseDNS(m, func(string, netip.Addr, uint32) { t.Errorf("%s: answer reported", name) }); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	parseDNS(query, func(string, netip.Addr, uint32) { t.Error("a query's records reported") })
	parseDNS(msg[:len(msg)-3], func(n string, a netip.Addr, _ uint32) {
		if a.Is6() {
			t.Error("truncated AAAA record reported")
		}
	})

	h := newHosts(2)
	now := time.Now()
	h.learn(now, msg)
	if n := h.name(now, netip.MustParseAddr("203.0.113.7")); n != "tunnel.us.ngrok.com" {
		t.Errorf("hosts: %q", n)
	}
	if n := h.name(now.Add(minHostTTL+time.Second), netip.MustParseAddr("203.0.113.7")); n != "" {
		t.Errorf("hosts after expiry: %q", n)
	}
	h.learn(now, dnsAnswer(8, "other.example", 60, netip.MustParseAddr("198.51.100.1")))
	if len(h.m) > 2 {
		t.Errorf("hosts holds %d entries, bound 2", len(h.m))
	}
}
