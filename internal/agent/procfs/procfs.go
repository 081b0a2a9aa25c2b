// Package procfs parses the files under Linux /proc that more than one
// agent package reads. It holds parsers only (no file access), imports the
// standard library only, and builds on every platform. Importers: the
// response actions (internal/agent/action: kill, the processes query) and
// the process sensor (internal/agent/sensor/process: ProcessStartTime).
package procfs

import (
	"bytes"
	"errors"
	"strconv"
)

// Stat is what the agent reads from /proc/PID/stat.
type Stat struct {
	PID   int
	Comm  string
	State byte
	PPID  int
	// Start is field 22, starttime: clock ticks after boot at which the
	// process started (fork time; an exec does not change it). With the pid
	// it names a process uniquely for the life of the boot.
	Start uint64
}

// ErrStat is returned for a /proc/PID/stat that does not parse.
var ErrStat = errors.New("malformed /proc/PID/stat")

// ParseStat reads /proc/PID/stat. The command name (field 2) is in
// parentheses and may itself hold spaces and parentheses, so the fields
// after it are found from the last ')'.
func ParseStat(b []byte) (Stat, error) {
	var s Stat
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 1 || end < open {
		return s, ErrStat
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil || pid <= 0 {
		return s, ErrStat
	}
	s.PID, s.Comm = pid, string(b[open+1:end])
	// The fields after the name, up to field 22, split on white space
	// without building a slice of all 50 (the sensor parses one per exec).
	var f [20][]byte
	n, rest := 0, b[end+1:]
	for n < len(f) {
		i := 0
		for i < len(rest) && isSpace(rest[i]) {
			i++
		}
		j := i
		for j < len(rest) && !isSpace(rest[j]) {
			j++
		}
		if i == j {
			break
		}
		f[n], rest = rest[i:j], rest[j:]
		n++
	}
	// f[0] is field 3 (state), f[1] field 4 (ppid), f[19] field 22.
	if n < len(f) || len(f[0]) != 1 {
		return s, ErrStat
	}
	s.State = f[0][0]
	if s.PPID, err = strconv.Atoi(string(f[1])); err != nil || s.PPID < 0 {
		return s, ErrStat
	}
	if s.Start, err = strconv.ParseUint(string(f[19]), 10, 64); err != nil {
		return s, ErrStat
	}
	return s, nil
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}
