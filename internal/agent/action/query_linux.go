package action

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vigil-edr/vigil/internal/agent/sensor/inventory"
)

// MaxQueryRows bounds the rows of one query result.
const MaxQueryRows = 10000

// QueryResult is the output of a live query.
type QueryResult struct {
	Query     string `json:"query"`
	Rows      any    `json:"rows"`
	Truncated bool   `json:"truncated,omitempty"` // more than MaxQueryRows rows existed
}

// Process is one row of the processes query.
type Process struct {
	PID     int    `json:"pid"`
	PPID    int    `json:"ppid"`
	Start   uint64 `json:"start_time"` // what kill needs with the pid
	UID     uint32 `json:"uid"`
	Comm    string `json:"comm"`
	Exe     string `json:"exe,omitempty"`
	Cmdline string `json:"cmdline,omitempty"`
}

// Query runs one query of the fixed catalogue (command.Queries); nothing
// else can be run.
func Query(name string, args map[string]string) (*QueryResult, error) {
	r := &QueryResult{Query: name}
	var err error
	switch name {
	case "processes":
		r.Rows, r.Truncated, err = processes()
	case "connections":
		r.Rows, r.Truncated, err = sockets(false)
	case "listening_ports":
		r.Rows, r.Truncated, err = sockets(true)
	case "users":
		f, ferr := os.Open("/etc/passwd")
		if ferr != nil {
			return nil, ferr
		}
		defer f.Close()
		r.Rows, _, err = inventory.ParsePasswd(f)
	case "file_hash":
		r.Rows, err = fileHash(args["path"])
	default:
		return nil, fmt.Errorf("query %q is not in the catalogue", name)
	}
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", name, err)
	}
	return r, nil
}

func processes() ([]Process, bool, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, false, err
	}
	var out []Process
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if len(out) == MaxQueryRows {
			return out, true, nil
		}
		st, err := readStat(pid)
		if err != nil {
			continue
		}
		p := Process{PID: pid, PPID: st.PPID, Start: st.Start, Comm: st.Comm}
		dir := "/proc/" + e.Name()
		p.UID = statUID(dir)
		p.Exe, _ = os.Readlink(dir + "/exe")
		if b, err := os.ReadFile(dir + "/cmdline"); err == nil {
			p.Cmdline = clipString(strings.TrimRight(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})), " "), 4096)
		}
		out = append(out, p)
	}
	return out, false, nil
}

func sockets(listening bool) ([]Socket, bool, error) {
	owners := socketOwners()
	var out []Socket
	for _, proto := range []string{"tcp", "tcp6", "udp", "udp6"} {
		f, err := os.Open("/proc/net/" + proto)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			s, err := parseProcNetLine(sc.Text(), proto)
			if err != nil {
				continue // the header
			}
			listen := s.State == "listen" || s.State == "unconnected"
			if listen != listening {
				continue
			}
			if o, ok := owners[s.Inode]; ok {
				s.PID, s.Comm = o.PID, o.Comm
			}
			if len(out) == MaxQueryRows {
				f.Close()
				return out, true, nil
			}
			out = append(out, s)
		}
		f.Close()
	}
	return out, false, nil
}

// socketOwners maps socket inodes to a process holding them.
func socketOwners() map[uint64]ProcRef {
	m := map[uint64]ProcRef{}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd")
	for _, fdDir := range procs {
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(fdDir)))
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			l, err := os.Readlink(fdDir + "/" + fd.Name())
			if err != nil || !strings.HasPrefix(l, "socket:[") {
				continue
			}
			ino, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]"), 10, 64)
			if err != nil {
				continue
			}
			if _, ok := m[ino]; !ok {
				st, _ := readStat(pid)
				m[ino] = ProcRef{PID: pid, Start: st.Start, Comm: st.Comm}
			}
		}
	}
	return m
}

// FileHash is the row of the file_hash query.
type FileHash struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

func fileHash(path string) ([]FileHash, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("path %q is not absolute", path)
	}
	f, err := openNonblock(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, err
	}
	return []FileHash{{Path: path, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}}, nil
}

func statUID(dir string) uint32 {
	b, err := os.ReadFile(dir + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				u, _ := strconv.ParseUint(f[0], 10, 32)
				return uint32(u)
			}
		}
	}
	return 0
}

func clipString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
