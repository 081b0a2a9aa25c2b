package posture

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// procName is how a p: rule can name a process.
type procName struct {
	pid              int
	comm, exe, argv0 string
}

// MaxProcs bounds the processes a scan lists.
const MaxProcs = 100_000

// listProcs reads the processes under a /proc directory: comm, the base
// name of the exe link and of argv[0]. Processes that exit meanwhile are
// skipped.
func listProcs(dir string) ([]procName, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []procName
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		if len(out) >= MaxProcs {
			break
		}
		base := filepath.Join(dir, e.Name())
		p := procName{pid: pid}
		if b, err := os.ReadFile(filepath.Join(base, "comm")); err == nil {
			p.comm = strings.TrimRight(string(b), "\n")
		}
		if l, err := os.Readlink(filepath.Join(base, "exe")); err == nil {
			p.exe = filepath.Base(strings.TrimSuffix(l, " (deleted)"))
		}
		if b, err := readBounded(filepath.Join(base, "cmdline"), 64<<10); err == nil {
			if i := bytes.IndexByte(b, 0); i >= 0 {
				b = b[:i]
			}
			if len(b) > 0 {
				p.argv0 = filepath.Base(string(b))
			}
		}
		if p.comm != "" || p.exe != "" || p.argv0 != "" {
			out = append(out, p)
		}
	}
	return out, nil
}

// idNames maps uids and gids to names from Root/etc/passwd and
// Root/etc/group, read once per scan.
type idNames struct {
	users, groups map[uint32]string
}

func (s *scan) names() *idNames {
	if s.ids == nil {
		s.ids = &idNames{users: readIDs(s.host("/etc/passwd")), groups: readIDs(s.host("/etc/group"))}
	}
	return s.ids
}

func (s *scan) userNames(id uint32) string  { return s.names().users[id] }
func (s *scan) groupNames(id uint32) string { return s.names().groups[id] }

// readIDs reads name:x:id lines (passwd and group share the first three
// fields). The password field is skipped, never kept.
func readIDs(path string) map[uint32]string {
	m := map[uint32]string{}
	f, err := os.Open(path)
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() && len(m) < 100_000 {
		fs := strings.SplitN(sc.Text(), ":", 4)
		if len(fs) < 3 {
			continue
		}
		if id, err := strconv.ParseUint(fs[2], 10, 32); err == nil {
			if _, dup := m[uint32(id)]; !dup {
				m[uint32(id)] = fs[0]
			}
		}
	}
	return m
}
