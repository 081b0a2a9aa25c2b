package inventory

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits applied to every parsed file. The files are root-owned, but a
// sensor treats what it reads as hostile: a line or a value beyond these is
// cut (values) or skipped (lines), and a file with more items than MaxItems
// is an error, so a corrupted database cannot exhaust the agent's memory.
const (
	MaxLine     = 64 << 10  // bytes per line; longer lines are skipped
	MaxValue    = 4 << 10   // bytes per value; longer values are cut
	MaxItems    = 200_000   // items per file
	maxUnitFile = 256 << 10 // bytes of a systemd unit file that are read
)

// ErrTooMany means a file holds more than MaxItems items.
var ErrTooMany = fmt.Errorf("inventory: more than %d items", MaxItems)

// lines calls fn for each line of r without its newline; lines longer than
// MaxLine are skipped and counted. It returns the first read error.
func lines(r io.Reader, fn func(line string) error) (long int, err error) {
	br := bufio.NewReaderSize(r, 32<<10)
	var buf []byte
	tooLong := false
	for {
		// ReadLine returns a line or an error, never both; a last line
		// without a newline comes before io.EOF.
		frag, more, err := br.ReadLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return long, err
		}
		if !tooLong {
			if len(buf)+len(frag) > MaxLine {
				tooLong, buf = true, buf[:0]
			} else {
				buf = append(buf, frag...)
			}
		}
		if more {
			continue
		}
		if tooLong {
			long++
			tooLong = false
			continue
		}
		if err := fn(string(buf)); err != nil {
			return long, err
		}
		buf = buf[:0]
	}
}

// clean makes a value safe to report: valid UTF-8, at most MaxValue bytes,
// no NUL bytes.
func clean(s string) string {
	if len(s) > MaxValue {
		s = s[:MaxValue] // a rune cut in two becomes U+FFFD below
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ReplaceAll(s, "\x00", "")
}

// ParseDpkgStatus reads dpkg's status file (/var/lib/dpkg/status): stanzas
// of "Field: value" lines separated by blank lines, continuation lines
// starting with a space or tab. Every package whose state is neither
// not-installed nor config-files is returned (a package being upgraded is
// still installed, under its new version once unpacked). Stanzas without a
// Package or Version field are skipped and counted.
func ParseDpkgStatus(r io.Reader) ([]Package, int, error) {
	var (
		out     []Package
		cur     Package
		skipped int
		in      bool // inside a stanza
	)
	flush := func() error {
		if !in {
			return nil
		}
		in = false
		p := cur
		cur = Package{}
		switch {
		case p.Name == "" || p.Version == "":
			skipped++
			return nil
		case p.Status == "not-installed" || p.Status == "config-files":
			return nil
		}
		p.Manager = "dpkg"
		if p.Source == "" {
			p.Source = p.Name
		}
		if p.SourceVersion == p.Version {
			p.SourceVersion = ""
		}
		if len(out) >= MaxItems {
			return ErrTooMany
		}
		out = append(out, p)
		return nil
	}
	long, err := lines(r, func(line string) error {
		if strings.TrimSpace(line) == "" {
			return flush()
		}
		in = true
		if line[0] == ' ' || line[0] == '\t' {
			return nil // continuation of a field we do not keep
		}
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			return nil
		}
		val = clean(strings.TrimSpace(val))
		switch name {
		case "Package":
			cur.Name = val
		case "Version":
			cur.Version = val
		case "Architecture":
			cur.Arch = val
		case "Status":
			// "want flag status", e.g. "install ok installed".
			if f := strings.Fields(val); len(f) == 3 {
				cur.Status = f[2]
			} else {
				cur.Status = val
			}
		case "Source":
			// "name" or "name (version)".
			src, ver, _ := strings.Cut(val, " ")
			cur.Source = src
			if v := strings.TrimSpace(ver); strings.HasPrefix(v, "(") && strings.HasSuffix(v, ")") {
				cur.SourceVersion = strings.TrimSpace(v[1 : len(v)-1])
			}
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return nil, 0, err
	}
	return out, skipped + long, nil
}

// RPMQueryFormat is the rpm --queryformat whose output ParseRPM reads: one
// line per package with name, [epoch:]version-release, arch and source rpm,
// separated by tabs.
const RPMQueryFormat = `%{NAME}\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\n`

// ParseRPM reads the output of `rpm -qa --queryformat RPMQueryFormat`. The
// gpg-pubkey pseudo-packages (imported signing keys) are left out. Lines
// without four fields are skipped and counted.
func ParseRPM(r io.Reader) ([]Package, int, error) {
	var out []Package
	skipped := 0
	long, err := lines(r, func(line string) error {
		f := strings.Split(line, "\t")
		if len(f) != 4 || f[0] == "" || f[1] == "" {
			if strings.TrimSpace(line) != "" {
				skipped++
			}
			return nil
		}
		if f[0] == "gpg-pubkey" {
			return nil
		}
		p := Package{Name: clean(f[0]), Version: clean(f[1]), Arch: clean(f[2]), Manager: "rpm", Status: "installed"}
		if src, ok := strings.CutSuffix(f[3], ".src.rpm"); ok {
			// name-version-release: the name may itself contain dashes.
			if i := strings.LastIndexByte(src, '-'); i > 0 {
				if j := strings.LastIndexByte(src[:i], '-'); j > 0 {
					p.Source, p.SourceVersion = clean(src[:j]), clean(src[j+1:])
				}
			}
		}
		if p.Source == "" {
			p.Source = p.Name
		}
		if v := p.Version; p.SourceVersion == v || (strings.Contains(v, ":") && v[strings.IndexByte(v, ':')+1:] == p.SourceVersion) {
			p.SourceVersion = ""
		}
		if len(out) >= MaxItems {
			return ErrTooMany
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return out, skipped + long, nil
}

// ParseOSRelease reads os-release(5): KEY=value lines, values optionally in
// single or double quotes (with \", \\, \$ and \` escapes in double
// quotes); comments start with #. Unknown keys are ignored.
func ParseOSRelease(r io.Reader) (OS, error) {
	var o OS
	_, err := lines(r, func(line string) error {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			return nil
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil
		}
		v = clean(unquote(v))
		switch k {
		case "NAME":
			o.Name = v
		case "ID":
			o.ID = v
		case "ID_LIKE":
			o.IDLike = v
		case "VERSION_ID":
			o.VersionID = v
		case "VERSION_CODENAME":
			o.Codename = v
		case "PRETTY_NAME":
			o.PrettyName = v
		}
		return nil
	})
	return o, err
}

func unquote(v string) string {
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return v[1 : len(v)-1]
	}
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return v
	}
	v = v[1 : len(v)-1]
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) && strings.IndexByte("\"\\$`", v[i+1]) >= 0 {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// ParsePasswd reads /etc/passwd: name:password:uid:gid:gecos:home:shell.
// The password field is never kept. NIS lines (+, -) and lines without
// seven fields or with a non-numeric uid or gid are skipped and counted.
func ParsePasswd(r io.Reader) ([]User, int, error) {
	var out []User
	skipped := 0
	long, err := lines(r, func(line string) error {
		if strings.TrimSpace(line) == "" || line[0] == '#' {
			return nil
		}
		f := strings.Split(line, ":")
		if len(f) != 7 || f[0] == "" || f[0][0] == '+' || f[0][0] == '-' {
			skipped++
			return nil
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			skipped++
			return nil
		}
		if len(out) >= MaxItems {
			return ErrTooMany
		}
		out = append(out, User{Name: clean(f[0]), UID: uint32(uid), GID: uint32(gid), Gecos: clean(f[4]), Home: clean(f[5]), Shell: clean(f[6])})
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return out, skipped + long, nil
}

// ParseGroup reads /etc/group: name:password:gid:member,member. The
// password field is never kept. Lines without four fields or with a
// non-numeric gid are skipped and counted.
func ParseGroup(r io.Reader) ([]Group, int, error) {
	var out []Group
	skipped := 0
	long, err := lines(r, func(line string) error {
		if strings.TrimSpace(line) == "" || line[0] == '#' {
			return nil
		}
		f := strings.Split(line, ":")
		if len(f) != 4 || f[0] == "" || f[0][0] == '+' || f[0][0] == '-' {
			skipped++
			return nil
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			skipped++
			return nil
		}
		g := Group{Name: clean(f[0]), GID: uint32(gid)}
		for _, m := range strings.Split(f[3], ",") {
			if m = strings.TrimSpace(m); m != "" {
				g.Members = append(g.Members, clean(m))
			}
		}
		if len(out) >= MaxItems {
			return ErrTooMany
		}
		out = append(out, g)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return out, skipped + long, nil
}

// ParseModules reads /proc/modules: "name size refcount deps state address
// [(taint)]", deps being "-" or a comma-terminated list of the modules that
// use this one. Lines with fewer than six fields or a non-numeric size are
// skipped and counted.
func ParseModules(r io.Reader) ([]Module, int, error) {
	var out []Module
	skipped := 0
	long, err := lines(r, func(line string) error {
		f := strings.Fields(line)
		if len(f) == 0 {
			return nil
		}
		if len(f) < 6 {
			skipped++
			return nil
		}
		size, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			skipped++
			return nil
		}
		refs, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			refs = -1 // "-" when the kernel cannot unload modules
		}
		m := Module{Name: clean(f[0]), Size: size, Refs: refs, State: clean(f[4])}
		if f[3] != "-" {
			for _, d := range strings.Split(f[3], ",") {
				if d != "" {
					m.Deps = append(m.Deps, clean(d))
				}
			}
		}
		if len(f) > 6 {
			m.Taint = clean(strings.Trim(strings.Join(f[6:], ""), "()"))
		}
		if len(out) >= MaxItems {
			return ErrTooMany
		}
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return out, skipped + long, nil
}

// Socket states in /proc/net/{tcp,udp}*.
const (
	tcpListen = 0x0A
	udpClose  = 0x07 // an unconnected UDP socket
)

// ParseProcNet reads /proc/net/tcp, tcp6, udp or udp6 (proto "tcp" or
// "udp") and returns the listening sockets: TCP in LISTEN state, UDP
// sockets without a remote address. Addresses are hexadecimal 32-bit words
// in the kernel's byte order (this machine's). The header line and lines
// that do not parse are skipped; the latter are counted.
func ParseProcNet(r io.Reader, proto string) ([]Port, int, error) {
	var out []Port
	skipped := 0
	first := true
	long, err := lines(r, func(line string) error {
		if first {
			first = false
			if strings.Contains(line, "local_address") {
				return nil
			}
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			return nil
		}
		if len(f) < 10 {
			skipped++
			return nil
		}
		st, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil {
			skipped++
			return nil
		}
		local, lport, err1 := parseHexAddr(f[1])
		remote, rport, err2 := parseHexAddr(f[2])
		uid, err3 := strconv.ParseUint(f[7], 10, 32)
		inode, err4 := strconv.ParseUint(f[9], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			skipped++
			return nil
		}
		switch {
		case proto == "tcp" && st == tcpListen:
		case proto == "udp" && st == udpClose && remote.IsUnspecified() && rport == 0 && lport != 0:
		default:
			return nil
		}
		if len(out) >= MaxItems {
			return ErrTooMany
		}
		out = append(out, Port{Protocol: proto, LocalIP: local.String(), LocalPort: lport, UID: uint32(uid), Inode: inode})
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return out, skipped + long, nil
}

// parseHexAddr reads "0100007F:0CEA" (IPv4) or a 32-digit IPv6 address and
// a port. Each group of eight digits is one 32-bit word printed in host
// byte order; the port is in network order already.
func parseHexAddr(s string) (netip.Addr, uint16, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok || (len(a) != 8 && len(a) != 32) || len(p) != 4 {
		return netip.Addr{}, 0, errors.New("bad address")
	}
	raw, err := hex.DecodeString(a)
	if err != nil {
		return netip.Addr{}, 0, err
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.Addr{}, 0, err
	}
	var b [16]byte
	for i := 0; i < len(raw); i += 4 {
		// The word was printed as a number: big-endian digits of a value
		// whose memory layout is the host's.
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	if len(raw) == 4 {
		return netip.AddrFrom4([4]byte(b[:4])), uint16(port), nil
	}
	addr := netip.AddrFrom16(b)
	if addr.Is4In6() {
		addr = addr.Unmap()
	}
	return addr, uint16(port), nil
}

// Uevent is one kernel uevent (NETLINK_KOBJECT_UEVENT): "ACTION@DEVPATH"
// followed by NUL-separated KEY=VALUE pairs.
type Uevent struct {
	Action, DevPath, Subsystem string
}

// ParseUevent reads one uevent message. Messages from udev (starting with
// "libudev") and messages without an ACTION@DEVPATH header are errors.
func ParseUevent(b []byte) (Uevent, error) {
	var u Uevent
	if len(b) > MaxLine {
		return u, errors.New("uevent too long")
	}
	parts := bytes.Split(b, []byte{0})
	head := string(parts[0])
	act, dev, ok := strings.Cut(head, "@")
	if !ok || act == "" || dev == "" || strings.HasPrefix(head, "libudev") {
		return u, errors.New("not a kernel uevent")
	}
	u.Action, u.DevPath = clean(act), clean(dev)
	for _, kv := range parts[1:] {
		k, v, ok := bytes.Cut(kv, []byte("="))
		if !ok {
			continue
		}
		switch string(k) {
		case "ACTION":
			u.Action = clean(string(v))
		case "DEVPATH":
			u.DevPath = clean(string(v))
		case "SUBSYSTEM":
			u.Subsystem = clean(string(v))
		}
	}
	return u, nil
}

// ParseUnitExecStart returns the first ExecStart= command of a systemd
// unit's [Service] section, without the special prefixes (@, -, :, +, !).
func ParseUnitExecStart(r io.Reader) (string, error) {
	var exec string
	section := ""
	_, err := lines(io.LimitReader(r, maxUnitFile), func(line string) error {
		line = strings.TrimSpace(line)
		if exec != "" || line == "" || line[0] == '#' || line[0] == ';' {
			return nil
		}
		if line[0] == '[' {
			section = line
			return nil
		}
		if section != "[Service]" {
			return nil
		}
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			exec = clean(strings.TrimLeft(strings.TrimSpace(v), "@-:+!"))
		}
		return nil
	})
	return exec, err
}
