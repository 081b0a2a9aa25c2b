package network

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// sock is one socket from a sock_diag dump.
type sock struct {
	Protocol uint16
	State    uint8
	Local    netip.AddrPort
	Remote   netip.AddrPort
	UID      uint32
	Inode    uint32
	Cookie   uint64
}

// TCP states (include/net/tcp_states.h) used by the sensor.
const (
	tcpEstablished = 1
	tcpSynSent     = 2
	tcpSynRecv     = 3
	tcpClose       = 7
	tcpListen      = 10
)

// Netlink constants (uapi linux/netlink.h, linux/sock_diag.h).
const (
	nlmsgHdrLen       = 16
	nlmsgError        = 2
	nlmsgDone         = 3
	sockDiagByFamily  = 20
	inetDiagMsgLen    = 72
	inetDiagReqV2Len  = 56
	nlmFRequest       = 0x1
	nlmFDump          = 0x300
	maxNetlinkMessage = 1 << 20
)

// parseDiag walks one buffer of netlink messages answering an inet_diag
// dump and calls fn for each socket. done reports NLMSG_DONE. The layout
// (uapi linux/netlink.h and linux/inet_diag.h), all host byte order except
// where noted:
//
//	nlmsghdr:      u32 len (header included), u16 type, u16 flags, u32 seq, u32 pid;
//	               messages are padded to 4 bytes
//	inet_diag_msg: u8 family, u8 state, u8 timer, u8 retrans,
//	               sockid { be16 sport, be16 dport, be32 src[4], be32 dst[4],
//	                        u32 if, u32 cookie[2] },
//	               u32 expires, rqueue, wqueue, uid, inode   (72 bytes; attributes follow)
//	NLMSG_ERROR:   s32 -errno, then the request's header
//
// The buffer comes from the kernel but is treated as untrusted: every length
// is checked against what is left.
func parseDiag(b []byte, protocol uint16, fn func(*sock)) (done bool, err error) {
	ne := binary.NativeEndian
	for len(b) > 0 {
		if len(b) < nlmsgHdrLen {
			return false, fmt.Errorf("sock_diag: %d trailing bytes", len(b))
		}
		n := int(ne.Uint32(b))
		typ := ne.Uint16(b[4:])
		if n < nlmsgHdrLen || n > len(b) {
			return false, fmt.Errorf("sock_diag: message length %d of %d bytes", n, len(b))
		}
		body := b[nlmsgHdrLen:n]
		switch typ {
		case nlmsgDone:
			return true, nil
		case nlmsgError:
			if len(body) < 4 {
				return false, fmt.Errorf("sock_diag: short error message")
			}
			if e := int32(ne.Uint32(body)); e != 0 {
				return false, fmt.Errorf("sock_diag: errno %d", -e)
			}
		case sockDiagByFamily:
			if len(body) < inetDiagMsgLen {
				return false, fmt.Errorf("sock_diag: inet_diag_msg of %d bytes", len(body))
			}
			var s sock
			if !decodeDiagMsg(body, protocol, &s) {
				break // a family we did not ask for: skip
			}
			fn(&s)
		}
		adv := (n + 3) &^ 3
		if adv > len(b) {
			adv = len(b)
		}
		b = b[adv:]
	}
	return false, nil
}

func decodeDiagMsg(m []byte, protocol uint16, s *sock) bool {
	ne := binary.NativeEndian
	family := m[0]
	s.Protocol = protocol
	s.State = m[1]
	sport := binary.BigEndian.Uint16(m[4:])
	dport := binary.BigEndian.Uint16(m[6:])
	var la, ra netip.Addr
	switch family {
	case afInet:
		la, ra = netip.AddrFrom4([4]byte(m[8:12])), netip.AddrFrom4([4]byte(m[24:28]))
	case afInet6:
		la, ra = netip.AddrFrom16([16]byte(m[8:24])).Unmap(), netip.AddrFrom16([16]byte(m[24:40])).Unmap()
	default:
		return false
	}
	s.Local, s.Remote = netip.AddrPortFrom(la, sport), netip.AddrPortFrom(ra, dport)
	s.Cookie = uint64(ne.Uint32(m[44:])) | uint64(ne.Uint32(m[48:]))<<32
	s.UID = ne.Uint32(m[64:])
	s.Inode = ne.Uint32(m[68:])
	return true
}

// diagRequest builds an inet_diag_req_v2 dump request for one family and
// protocol, limited to the TCP states in the bit mask states (1<<state).
func diagRequest(family uint8, protocol uint8, states uint32, seq uint32) []byte {
	ne := binary.NativeEndian
	b := make([]byte, nlmsgHdrLen+inetDiagReqV2Len)
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], sockDiagByFamily)
	ne.PutUint16(b[6:], nlmFRequest|nlmFDump)
	ne.PutUint32(b[8:], seq)
	r := b[nlmsgHdrLen:]
	r[0] = family
	r[1] = protocol
	ne.PutUint32(r[4:], states)
	// sockid all zero: every socket; cookie INET_DIAG_NOCOOKIE is not
	// needed for a dump.
	return b
}
