package action

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/vigil-edr/vigil/internal/agent/procfs"
)

// procStat is what the kill and query code reads from /proc/PID/stat
// (the parser is shared with the process sensor).
type procStat = procfs.Stat

func parseStat(b []byte) (procStat, error) { return procfs.ParseStat(b) }

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
