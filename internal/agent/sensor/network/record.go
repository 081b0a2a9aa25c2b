package network

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-edr/vigil/internal/event"
)

// Record kinds, as in bpf/network.bpf.c.
const (
	kindConnect = 1 // connect(2) of a TCP or UDP socket: outbound
	kindAccept  = 2 // accept(2)/accept4(2) of a TCP socket: inbound
	kindSend    = 3 // sendto(2)/sendmsg(2) of UDP with an address: outbound
	kindRecv    = 4 // recvfrom(2)/recvmsg(2) of UDP with an address: inbound
	kindListen  = 5 // listen(2)
)

const (
	afInet  = 2
	afInet6 = 10

	protoTCP     = 6
	protoUDP     = 17
	protoUDPLite = 136
	protoMPTCP   = 262 // Go listens with MPTCP by default; it is TCP on the wire
)

// recordSize is sizeof(struct event) in bpf/network.bpf.c. A record is the
// struct in the host's byte order, at these offsets:
//
//	 0 u64 ts_ns       CLOCK_MONOTONIC of the syscall's return
//	 8 u64 start_time  the process's start, ns since boot
//	16 u32 pid, tid, ppid, uid, gid, repeats; s32 ret   (7 × 4 bytes)
//	44 u16 kind, family, protocol, lport, rport, args_len (6 × 2 bytes)
//	56 [16]u8 laddr   local address (first 4 bytes for AF_INET)
//	72 [16]u8 raddr   remote address
//	88 [16]u8 comm    NUL-padded
//	104 [256]u8 exe   the exec'd path, NUL-terminated, "" when unknown
//	360 [256]u8 args  argv, NUL-separated, args_len bytes
//
// TestRecordLayout checks these against the Go type bpf2go generated.
const recordSize = 616

// record is one decoded ring-buffer record. Comm, Exe and Args point into
// the buffer it was decoded from.
type record struct {
	Mono      uint64
	StartTime uint64
	PID, TID  uint32
	PPID      uint32
	UID, GID  uint32
	Repeats   uint32
	Ret       int32
	Kind      uint16
	Protocol  uint16
	Local     netip.AddrPort
	Remote    netip.AddrPort
	Comm      []byte
	Exe       []byte
	Args      []byte
}

var errRecord = errors.New("malformed network record")

// decodeRecord parses one ring-buffer record. It checks every field that
// later code relies on (kind, family, lengths) and never reads past b.
func decodeRecord(b []byte, r *record) error {
	if len(b) < recordSize {
		return fmt.Errorf("%w: %d bytes, want %d", errRecord, len(b), recordSize)
	}
	ne := binary.NativeEndian
	r.Mono = ne.Uint64(b[0:])
	r.StartTime = ne.Uint64(b[8:])
	r.PID = ne.Uint32(b[16:])
	r.TID = ne.Uint32(b[20:])
	r.PPID = ne.Uint32(b[24:])
	r.UID = ne.Uint32(b[28:])
	r.GID = ne.Uint32(b[32:])
	r.Repeats = ne.Uint32(b[36:])
	r.Ret = int32(ne.Uint32(b[40:]))
	r.Kind = ne.Uint16(b[44:])
	family := ne.Uint16(b[46:])
	r.Protocol = ne.Uint16(b[48:])
	lport, rport := ne.Uint16(b[50:]), ne.Uint16(b[52:])
	argsLen := int(ne.Uint16(b[54:]))
	if r.Kind < kindConnect || r.Kind > kindListen {
		return fmt.Errorf("%w: kind %d", errRecord, r.Kind)
	}
	var la, ra netip.Addr
	switch family {
	case afInet:
		la, ra = netip.AddrFrom4([4]byte(b[56:60])), netip.AddrFrom4([4]byte(b[72:76]))
	case afInet6:
		la, ra = netip.AddrFrom16([16]byte(b[56:72])).Unmap(), netip.AddrFrom16([16]byte(b[72:88])).Unmap()
	default:
		return fmt.Errorf("%w: family %d", errRecord, family)
	}
	r.Local, r.Remote = netip.AddrPortFrom(la, lport), netip.AddrPortFrom(ra, rport)
	if argsLen > 256 {
		return fmt.Errorf("%w: args_len %d", errRecord, argsLen)
	}
	r.Comm = cstring(b[88:104])
	r.Exe = cstring(b[104:360])
	r.Args = bytes.TrimRight(b[360:360+argsLen], "\x00")
	return nil
}

func cstring(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// proc is what the sensor knows of the process behind a record.
type proc struct {
	image, cmdline string
	user, uid      string
	parentImage    string
}

var (
	catConnection = []string{"network_connection"}
	catListen     = []string{"network_listen"}
)

// Event types (the EventType field).
const (
	TypeConnect   = "connect"          // TCP or UDP connect: outbound
	TypeAccept    = "accept"           // TCP accept: inbound
	TypeSend      = "send"             // UDP datagram sent to an address: outbound
	TypeReceive   = "receive"          // UDP datagram received from an address: inbound
	TypeListen    = "listen"           // a socket started listening (seen live)
	TypeListening = "listening_socket" // one entry of the listening-socket report
)

func protoName(p uint16) string {
	switch p {
	case protoTCP, protoMPTCP:
		return "tcp"
	case protoUDP:
		return "udp"
	case protoUDPLite:
		return "udplite"
	}
	return strconv.Itoa(int(p))
}

// fill writes r as a Sigma event into ev (reset first). Outbound
// (Initiated "true"): Source is the local end, Destination the peer.
// Inbound ("false"): Source is the peer that initiated, Destination the
// local end, as Sysmon reports event 3. host is the name the destination
// was resolved from, "" when unknown.
func fill(ev *event.Event, t time.Time, r *record, p *proc, host string) {
	ev.Reset()
	ev.Time = t
	ev.Product = "linux"
	ev.Source = "network"
	ev.Record = 0
	var typ string
	initiated := ""
	switch r.Kind {
	case kindConnect:
		typ, initiated = TypeConnect, "true"
	case kindAccept:
		typ, initiated = TypeAccept, "false"
	case kindSend:
		typ, initiated = TypeSend, "true"
	case kindRecv:
		typ, initiated = TypeReceive, "false"
	case kindListen:
		typ = TypeListen
	}
	ev.Categories = catConnection
	if r.Kind == kindListen {
		ev.Categories = catListen
	}
	ev.Add("EventType", typ)
	addProcess(ev, r.PID, r.PPID, p)
	ev.Add("Protocol", protoName(r.Protocol))
	if r.Kind == kindListen {
		addEnd(ev, "Source", r.Local)
		return
	}
	ev.Add("Initiated", initiated)
	src, dst := r.Local, r.Remote
	if initiated == "false" {
		src, dst = r.Remote, r.Local
	}
	addEnd(ev, "Source", src)
	addEnd(ev, "Destination", dst)
	if host != "" && initiated == "true" {
		ev.Add("DestinationHostname", host)
	}
	if r.Repeats > 0 {
		ev.Add("Repeats", strconv.FormatUint(uint64(r.Repeats), 10))
	}
}

func addProcess(ev *event.Event, pid, ppid uint32, p *proc) {
	if pid == 0 {
		return
	}
	ev.Add("ProcessId", strconv.FormatUint(uint64(pid), 10))
	if p == nil {
		return
	}
	if p.image != "" {
		ev.Add("Image", p.image)
	}
	if p.cmdline != "" {
		ev.Add("CommandLine", p.cmdline)
	}
	if p.user != "" {
		ev.Add("User", p.user)
	}
	if p.uid != "" {
		ev.Add("UserId", p.uid)
	}
	if ppid != 0 {
		ev.Add("ParentProcessId", strconv.FormatUint(uint64(ppid), 10))
		if p.parentImage != "" {
			ev.Add("ParentImage", p.parentImage)
		}
	}
}

func addEnd(ev *event.Event, side string, ap netip.AddrPort) {
	a := ap.Addr()
	ev.Add(side+"Ip", a.String())
	ev.Add(side+"Port", strconv.FormatUint(uint64(ap.Port()), 10))
	if a.Is6() {
		ev.Add(side+"IsIpv6", "true")
	} else {
		ev.Add(side+"IsIpv6", "false")
	}
}

// argv turns NUL-separated arguments into one command line (the form the
// process sensor reports), as valid UTF-8.
func argv(b []byte) string {
	return validUTF8(string(bytes.ReplaceAll(bytes.TrimRight(b, "\x00"), []byte{0}, []byte{' '})))
}

// validUTF8 replaces invalid sequences (a path or argument is any bytes)
// with U+FFFD, so events always carry valid UTF-8.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
