package action

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

// Socket is one line of /proc/net/{tcp,tcp6,udp,udp6}.
type Socket struct {
	Proto  string `json:"protocol"`
	Local  string `json:"local"`  // address:port
	Remote string `json:"remote"` // address:port
	State  string `json:"state"`
	UID    uint32 `json:"uid"`
	Inode  uint64 `json:"inode"`
	PID    int    `json:"pid,omitempty"`
	Comm   string `json:"comm,omitempty"`
}

var tcpStates = map[string]string{"01": "established", "02": "syn_sent", "03": "syn_recv", "04": "fin_wait1",
	"05": "fin_wait2", "06": "time_wait", "07": "close", "08": "close_wait", "09": "last_ack", "0A": "listen", "0B": "closing"}

var errProcNet = errors.New("malformed /proc/net line")

// parseProcNetLine reads one socket line ("sl local rem st … uid … inode").
// Addresses are hexadecimal 32-bit words in host byte order (little-endian
// on every architecture the agent ships for).
func parseProcNetLine(line, proto string) (Socket, error) {
	f := strings.Fields(line)
	if len(f) < 10 || !strings.HasSuffix(f[0], ":") {
		return Socket{}, errProcNet
	}
	local, err := hexAddrPort(f[1])
	if err != nil {
		return Socket{}, err
	}
	remote, err := hexAddrPort(f[2])
	if err != nil {
		return Socket{}, err
	}
	st, ok := tcpStates[f[3]]
	if !ok {
		return Socket{}, errProcNet
	}
	if strings.HasPrefix(proto, "udp") {
		st = "unconnected"
		if f[3] == "01" {
			st = "connected"
		}
	}
	uid, err := strconv.ParseUint(f[7], 10, 32)
	if err != nil {
		return Socket{}, errProcNet
	}
	inode, err := strconv.ParseUint(f[9], 10, 64)
	if err != nil {
		return Socket{}, errProcNet
	}
	return Socket{Proto: proto, Local: local.String(), Remote: remote.String(), State: st, UID: uint32(uid), Inode: inode}, nil
}

func hexAddrPort(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	port, err := strconv.ParseUint(p, 16, 16)
	if !ok || err != nil {
		return netip.AddrPort{}, errProcNet
	}
	raw, err := hex.DecodeString(a)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, errProcNet
	}
	// Each 32-bit word is in host (little-endian) order.
	for i := 0; i < len(raw); i += 4 {
		binary.BigEndian.PutUint32(raw[i:], binary.LittleEndian.Uint32(raw[i:]))
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}
