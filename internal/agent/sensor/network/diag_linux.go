//go:build linux

package network

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// diagSock dumps sockets over NETLINK_SOCK_DIAG. It is used by one goroutine
// at a time.
type diagSock struct {
	fd  int
	seq uint32
	buf []byte
}

func openDiag() (*diagSock, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("sock_diag socket: %w", err)
	}
	tv := unix.NsecToTimeval((2 * time.Second).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &diagSock{fd: fd, buf: make([]byte, 64<<10)}, nil
}

func (d *diagSock) Close() error { return unix.Close(d.fd) }

// dump calls fn for every socket of protocol (TCP or UDP) over IPv4 and IPv6
// in the TCP states of the mask.
func (d *diagSock) dump(protocol uint8, states uint32, fn func(*sock)) error {
	for _, fam := range []uint8{afInet, afInet6} {
		d.seq++
		req := diagRequest(fam, protocol, states, d.seq)
		if err := unix.Sendto(d.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return fmt.Errorf("sock_diag request: %w", err)
		}
		for {
			n, _, err := unix.Recvfrom(d.fd, d.buf, 0)
			if err != nil {
				if errors.Is(err, unix.EINTR) {
					continue
				}
				return fmt.Errorf("sock_diag receive: %w", err)
			}
			done, err := parseDiag(d.buf[:n], uint16(protocol), fn)
			if err != nil {
				return err
			}
			if done {
				break
			}
		}
	}
	return nil
}

// socketOwners maps socket inodes to the pid of a process holding them, by
// reading every /proc/<pid>/fd/*. Only inodes in want are looked for, and
// the scan stops once all are found. It is the slow part of the fallback
// and of the listening report: call it only when there are unknown inodes.
func socketOwners(want map[uint32]uint32) {
	left := 0
	for _, pid := range want {
		if pid == 0 {
			left++
		}
	}
	if left == 0 {
		return
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	buf := make([]byte, 64)
	for _, p := range procs {
		pid, err := strconv.ParseUint(p.Name(), 10, 32)
		if err != nil {
			continue
		}
		dir := filepath.Join("/proc", p.Name(), "fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			n, err := unix.Readlink(dir+"/"+fd.Name(), buf)
			if err != nil || n < 10 {
				continue
			}
			s, ok := strings.CutPrefix(string(buf[:n]), "socket:[")
			if !ok {
				continue
			}
			ino, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 32)
			if err != nil {
				continue
			}
			if cur, ok := want[uint32(ino)]; ok && cur == 0 {
				want[uint32(ino)] = uint32(pid)
				if left--; left == 0 {
					return
				}
			}
		}
	}
}
