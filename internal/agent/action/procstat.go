package action

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
)

// procStat is what the kill and query code reads from /proc/PID/stat.
type procStat struct {
	PID   int
	Comm  string
	State byte
	PPID  int
	// Start is field 22, starttime: clock ticks after boot at which the
	// process started. With the pid it names a process uniquely for the
	// life of the boot.
	Start uint64
}

var errStat = errors.New("malformed /proc/PID/stat")

// parseStat reads /proc/PID/stat. The command name (field 2) is in
// parentheses and may itself hold spaces and parentheses, so the fields
// after it are found from the last ')'.
func parseStat(b []byte) (procStat, error) {
	var s procStat
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 1 || end < open {
		return s, errStat
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil || pid <= 0 {
		return s, errStat
	}
	s.PID, s.Comm = pid, string(b[open+1:end])
	f := bytes.Fields(b[end+1:])
	// f[0] is field 3 (state), f[1] field 4 (ppid), f[19] field 22.
	if len(f) < 20 || len(f[0]) != 1 {
		return s, errStat
	}
	s.State = f[0][0]
	if s.PPID, err = strconv.Atoi(string(f[1])); err != nil || s.PPID < 0 {
		return s, errStat
	}
	if s.Start, err = strconv.ParseUint(string(f[19]), 10, 64); err != nil {
		return s, errStat
	}
	return s, nil
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
