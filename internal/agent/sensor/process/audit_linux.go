//go:build linux

package process

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	libaudit "github.com/elastic/go-libaudit/v2"
	"github.com/elastic/go-libaudit/v2/rule"
	"golang.org/x/sys/unix"
)

// Why our own socket under go-libaudit's AuditClient: its NetlinkClient
// hides the file descriptor, and the sensor needs two socket options on it:
// SO_RCVTIMEO, so that the blocking receive returns every recvTimeout and
// Run can stop (closing a socket does not wake a recvfrom blocked on it),
// and SO_RCVBUFFORCE, so that a multicast listener survives bursts.
// go-libaudit keeps the audit protocol (status, rule encoding, acks).

const (
	recvTimeout = 200 * time.Millisecond
	rcvBufBytes = 16 << 20
	// maxAuditMessage is the kernel's MAX_AUDIT_MESSAGE_LENGTH.
	maxAuditMessage = libaudit.AuditMessageMaxLength
)

// nlSocket is a NETLINK_AUDIT socket implementing
// libaudit.NetlinkSendReceiver.
type nlSocket struct {
	fd  int
	pid uint32
	seq atomic.Uint32
	buf []byte
}

func newNLSocket(groups uint32, timeout time.Duration, rcvbuf int) (*nlSocket, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.NETLINK_AUDIT)
	if err != nil {
		return nil, fmt.Errorf("audit netlink socket: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK, Groups: groups}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("bind audit netlink socket (groups %d): %w", groups, err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("audit netlink socket name: %w", err)
	}
	nl, ok := sa.(*syscall.SockaddrNetlink)
	if !ok {
		syscall.Close(fd)
		return nil, errors.New("audit netlink socket: unexpected address type")
	}
	if timeout > 0 {
		tv := syscall.NsecToTimeval(int64(timeout))
		if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
			syscall.Close(fd)
			return nil, fmt.Errorf("audit netlink socket timeout: %w", err)
		}
	}
	if rcvbuf > 0 {
		// SO_RCVBUFFORCE needs CAP_NET_ADMIN; SO_RCVBUF is capped by
		// net.core.rmem_max. Either is only an improvement.
		if syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, rcvbuf) != nil {
			_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
		}
	}
	return &nlSocket{fd: fd, pid: nl.Pid, buf: make([]byte, syscall.NLMSG_HDRLEN+maxAuditMessage)}, nil
}

func (s *nlSocket) Send(msg syscall.NetlinkMessage) (uint32, error) { return s.send(msg, 0) }

func (s *nlSocket) SendNoWait(msg syscall.NetlinkMessage) (uint32, error) {
	return s.send(msg, syscall.MSG_DONTWAIT)
}

func (s *nlSocket) send(msg syscall.NetlinkMessage, flags int) (uint32, error) {
	if msg.Header.Pid == 0 {
		msg.Header.Pid = s.pid
	}
	msg.Header.Seq = s.seq.Add(1)
	msg.Header.Len = uint32(syscall.SizeofNlMsghdr + len(msg.Data))
	b := make([]byte, msg.Header.Len)
	*(*syscall.NlMsghdr)(unsafe.Pointer(&b[0])) = msg.Header
	copy(b[syscall.SizeofNlMsghdr:], msg.Data)
	return msg.Header.Seq, syscall.Sendto(s.fd, b, flags, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK})
}

// Receive reads one message. With a receive timeout set, a blocking
// Receive returns EAGAIN when nothing arrived in time. Messages not sent by
// the kernel (port 0) are refused.
func (s *nlSocket) Receive(nonBlocking bool, p libaudit.NetlinkParser) ([]syscall.NetlinkMessage, error) {
	flags := 0
	if nonBlocking {
		flags = syscall.MSG_DONTWAIT
	}
	n, from, err := syscall.Recvfrom(s.fd, s.buf, flags)
	if err != nil {
		return nil, err
	}
	if n < syscall.NLMSG_HDRLEN {
		return nil, fmt.Errorf("short netlink message (%d bytes)", n)
	}
	if nl, ok := from.(*syscall.SockaddrNetlink); !ok || nl.Pid != 0 {
		return nil, errors.New("netlink message not from the kernel")
	}
	return p(s.buf[:n])
}

func (s *nlSocket) Close() error { return syscall.Close(s.fd) }

// recvBatch is how many netlink messages one recvBatch.recv reads at most.
// The kernel sends each audit record as a datagram of its own, so a single
// recvfrom returns one record; recvmmsg returns up to recvBatch of them per
// system call.
const recvBatch = 32

// batch holds the buffers of recvmmsg on one netlink socket. It is used by
// the receiving goroutine only.
type batch struct {
	hdrs  [recvBatch]unix.Mmsghdr
	iovs  [recvBatch]unix.Iovec
	names [recvBatch]unix.RawSockaddrNetlink
	buf   []byte // recvBatch buffers of batchBufSize bytes
}

// batchBufSize holds the longest audit message, rounded up to keep each
// buffer aligned.
const batchBufSize = (syscall.NLMSG_HDRLEN + maxAuditMessage + 7) &^ 7

func newBatch() *batch {
	b := &batch{buf: make([]byte, recvBatch*batchBufSize)}
	for i := range b.hdrs {
		b.iovs[i].Base = &b.buf[i*batchBufSize]
		b.iovs[i].SetLen(batchBufSize)
		b.hdrs[i].Hdr.Iov = &b.iovs[i]
		b.hdrs[i].Hdr.SetIovlen(1)
		b.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
	}
	return b
}

// recv reads what is queued on fd, up to recvBatch messages, with one
// recvmmsg that does not wait. It returns how many messages it read, or
// an error (EAGAIN when none was queued).
func (b *batch) recv(fd int) (int, error) {
	for i := range b.hdrs {
		b.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrNetlink
		b.hdrs[i].Hdr.Flags = 0
		b.hdrs[i].Len = 0
	}
	// A raw system call: it never blocks, and skipping the scheduler's
	// bookkeeping for system calls keeps sysmon asleep.
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.hdrs[0])),
		recvBatch, unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return 0, syscall.Errno(errno)
	}
	return int(n), nil
}

// message returns the type and payload of message i of the last recv; ok is
// false for a message to ignore: truncated, too short, or not sent by the
// kernel (port 0).
func (b *batch) message(i int) (typ uint16, data []byte, ok bool) {
	h := &b.hdrs[i]
	n := int(h.Len)
	if n < syscall.NLMSG_HDRLEN || h.Hdr.Flags&unix.MSG_TRUNC != 0 || b.names[i].Pid != 0 {
		return 0, nil, false
	}
	m := b.buf[i*batchBufSize : i*batchBufSize+n]
	// As go-libaudit does: one message per datagram, its length taken from
	// the datagram (some kernels set nlmsg_len wrong on audit records).
	return binary.NativeEndian.Uint16(m[4:6]), m[syscall.NLMSG_HDRLEN:], true
}

// auditConn is the sensor's hold on the kernel audit subsystem: a control
// client (status, rules) and a receiving client, plus what to undo.
type auditConn struct {
	log       *slog.Logger
	ctl       *libaudit.AuditClient
	rx        *libaudit.AuditClient
	rxSock    *nlSocket
	mechanism string
	detail    string
	rules     []rule.WireFormat // installed by us, removed at close
	restore   libaudit.AuditStatus
	lastLost  uint32
}

// openAudit probes the kernel and sets everything up. On error nothing is
// left changed.
func openAudit(opts *Options) (_ *auditConn, err error) {
	ctlSock, err := newNLSocket(0, 0, 0)
	if err != nil {
		return nil, explain(err)
	}
	a := &auditConn{log: opts.Logger, ctl: &libaudit.AuditClient{Netlink: ctlSock}}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	st, err := a.ctl.GetStatus()
	if err != nil {
		return nil, explain(fmt.Errorf("audit status: %w", err))
	}
	if st.Enabled == 2 {
		return nil, fmt.Errorf("%w: audit rules are locked (enabled=2, auditctl -e 2); add %q to the boot rules instead",
			ErrUnavailable, ruleText("b64", opts.RuleKey))
	}
	a.lastLost = st.Lost
	var notes []string

	holder := int(st.PID)
	if holder != 0 && holder != os.Getpid() && alive(holder) {
		notes = append(notes, fmt.Sprintf("audit PID held by %s", describePID(holder)))
	} else if err := a.becomeDaemon(); err != nil {
		if !errors.Is(err, syscall.EEXIST) {
			return nil, explain(fmt.Errorf("set audit PID: %w", err))
		}
		notes = append(notes, "audit PID taken by another process")
	}
	if a.rx == nil {
		sock, err := newNLSocket(libaudit.NetlinkGroupReadLog, recvTimeout, rcvBufBytes)
		if err != nil {
			return nil, explain(fmt.Errorf("join AUDIT_NLGRP_READLOG: %w", err))
		}
		a.rx, a.rxSock, a.mechanism = &libaudit.AuditClient{Netlink: sock}, sock, MechMulticast
		notes = append(notes, "reading the read-only multicast group")
	}

	// Settings: as the daemon we own them (raise only); with another
	// daemon we only make sure auditing is on.
	set := func(what string, f func() error) error {
		if err := f(); err != nil {
			return fmt.Errorf("set audit %s: %w", what, err)
		}
		return nil
	}
	if st.Enabled == 0 {
		if err := set("enabled", func() error { return a.ctl.SetEnabled(true, libaudit.WaitForReply) }); err != nil {
			return nil, err
		}
		a.restore.Mask |= libaudit.AuditStatusEnabled
		notes = append(notes, "enabled auditing")
	}
	limit, wait := st.BacklogLimit, st.BacklogWaitTime
	if a.mechanism == MechUnicast {
		if st.BacklogLimit < opts.BacklogLimit {
			if err := set("backlog limit", func() error {
				return a.ctl.SetBacklogLimit(opts.BacklogLimit, libaudit.WaitForReply)
			}); err != nil {
				return nil, err
			}
			a.restore.Mask |= libaudit.AuditStatusBacklogLimit
			a.restore.BacklogLimit, limit = st.BacklogLimit, opts.BacklogLimit
		}
		if st.FeatureBitmap&uint32(libaudit.AuditFeatureBitmapBacklogWaitTime) != 0 && st.BacklogWaitTime < opts.BacklogWaitTime {
			if err := set("backlog wait time", func() error {
				return a.ctl.SetBacklogWaitTime(int32(opts.BacklogWaitTime), libaudit.WaitForReply)
			}); err != nil {
				return nil, err
			}
			a.restore.Mask |= libaudit.AuditStatusBacklogWaitTime
			a.restore.BacklogWaitTime, wait = st.BacklogWaitTime, opts.BacklogWaitTime
		}
	}
	notes = append(notes, fmt.Sprintf("backlog_limit=%d backlog_wait_time=%d", limit, wait))
	if st.RateLimit != 0 {
		notes = append(notes, fmt.Sprintf("kernel rate_limit=%d/s drops records above it", st.RateLimit))
	}

	// Rules last: records start flowing only once the receiver is ready.
	for _, arch := range ruleArches() {
		text := ruleText(arch, opts.RuleKey)
		if err := a.addRule(arch, opts.RuleKey); err != nil {
			if arch == "b64" || arch == "" {
				return nil, fmt.Errorf("%w: install %q: %v", ErrUnavailable, text, err)
			}
			notes = append(notes, fmt.Sprintf("no %s rule: %v", arch, err))
			continue
		}
		notes = append(notes, "rule "+text)
	}
	a.detail = strings.Join(notes, "; ")
	return a, nil
}

// becomeDaemon registers a new receiving socket as the audit daemon. It
// returns an error wrapping EEXIST when another process holds the PID.
func (a *auditConn) becomeDaemon() error {
	sock, err := newNLSocket(0, recvTimeout, rcvBufBytes)
	if err != nil {
		return err
	}
	rx := &libaudit.AuditClient{Netlink: sock}
	if err := rx.SetPID(libaudit.WaitForReply); err != nil {
		sock.Close() // not rx.Close: that would try to release a PID we do not hold
		return err
	}
	a.rx, a.rxSock, a.mechanism = rx, sock, MechUnicast
	return nil
}

func ruleArches() []string {
	switch runtime.GOARCH {
	case "amd64", "arm64":
		return []string{"b64", "b32"}
	case "ppc64", "ppc64le", "s390x":
		return []string{"b64"}
	}
	return []string{""} // a 32-bit agent: the native arch
}

// buildRule encodes the rule ruleText describes. (Building the struct
// directly keeps go-libaudit's flag parser and its shell-quoting dependency
// out of the agent.)
func buildRule(arch, key string) (rule.WireFormat, error) {
	r := &rule.SyscallRule{
		Type:     rule.AppendSyscallRuleType,
		List:     "exit",
		Action:   "always",
		Syscalls: []string{"execve", "execveat"},
		Keys:     []string{key},
	}
	if arch != "" {
		r.Filters = []rule.FilterSpec{{Type: rule.ValueFilterType, LHS: "arch", Comparator: "=", RHS: arch}}
	}
	return rule.Build(r)
}

func ruleText(arch, key string) string {
	if arch == "" {
		return "-a always,exit -S execve,execveat -k " + key
	}
	return "-a always,exit -F arch=" + arch + " -S execve,execveat -k " + key
}

// addRule installs one rule. A rule that already exists with our key is
// left from an earlier run that did not stop cleanly: it is adopted, and
// removed at close like our own.
func (a *auditConn) addRule(arch, key string) error {
	wf, err := buildRule(arch, key)
	if err != nil {
		return err
	}
	if err := a.ctl.AddRule(wf); err != nil && !strings.Contains(err.Error(), "rule exists") {
		return err
	}
	a.rules = append(a.rules, wf)
	return nil
}

// pollLost reads the kernel's lost counter and returns how much it grew
// since the last call.
func (a *auditConn) pollLost() (uint32, error) {
	st, err := a.ctl.GetStatus()
	if err != nil {
		return 0, err
	}
	d := st.Lost - a.lastLost // wraps correctly
	a.lastLost = st.Lost
	return d, nil
}

// close removes our rules, restores the settings we changed, releases the
// audit PID and closes both sockets. Problems are logged: there is nothing
// better to do with them at shutdown.
func (a *auditConn) close() {
	for _, wf := range a.rules {
		if err := a.ctl.DeleteRule(wf); err != nil {
			a.log.Warn("process sensor: could not remove audit rule", "err", err)
		}
	}
	a.rules = nil
	if a.restore.Mask != 0 {
		if a.restore.Mask&libaudit.AuditStatusBacklogLimit != 0 {
			a.logErr("restore backlog limit", a.ctl.SetBacklogLimit(a.restore.BacklogLimit, libaudit.WaitForReply))
		}
		if a.restore.Mask&libaudit.AuditStatusBacklogWaitTime != 0 {
			a.logErr("restore backlog wait time", a.ctl.SetBacklogWaitTime(int32(a.restore.BacklogWaitTime), libaudit.WaitForReply))
		}
		if a.restore.Mask&libaudit.AuditStatusEnabled != 0 {
			// Auditing stays on while anyone else's rules are installed
			// (another agent on this host may have started after us and
			// found it on).
			if rules, err := a.ctl.GetRules(); err != nil || len(rules) > 0 {
				a.log.Info("process sensor: auditing left enabled: other audit rules are installed", "rules", len(rules), "err", err)
			} else {
				a.logErr("disable auditing again", a.ctl.SetEnabled(false, libaudit.WaitForReply))
			}
		}
		a.restore.Mask = 0
	}
	if a.rx != nil {
		// In unicast mode AuditClient.Close first sets the audit PID to 0.
		a.logErr("release audit socket", a.rx.Close())
		a.rx = nil
	}
	a.logErr("close audit control socket", a.ctl.Close())
}

func (a *auditConn) logErr(what string, err error) {
	if err != nil {
		a.log.Warn("process sensor: "+what, "err", err)
	}
}

// explain turns the errors of a failed probe into a reason a user can act
// on, wrapped in ErrUnavailable.
func explain(err error) error {
	var why string
	switch {
	case errors.Is(err, syscall.EPROTONOSUPPORT), errors.Is(err, syscall.EAFNOSUPPORT):
		why = "the kernel has no audit support (CONFIG_AUDIT)"
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		why = "not permitted: run as root or with CAP_AUDIT_CONTROL and CAP_AUDIT_READ"
	case errors.Is(err, syscall.ECONNREFUSED):
		why = "audit is not available in this network namespace (container?)"
	default:
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return fmt.Errorf("%w: %s (%v)", ErrUnavailable, why, err)
}

// alive reports whether a process exists (signal 0; EPERM means it exists
// but belongs to someone else).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func describePID(pid int) string {
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return fmt.Sprintf("pid %d", pid)
	}
	return fmt.Sprintf("%s (pid %d)", strings.TrimSpace(string(comm)), pid)
}
