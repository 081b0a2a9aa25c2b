//go:build !linux

package action

import "errors"

// KillResult is the output of a kill.
type KillResult struct {
	Killed []ProcRef `json:"killed"`
}

// ProcRef names one process: pid and start time.
type ProcRef struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start_time"`
	Comm  string `json:"comm"`
}

// Kill is not supported on this system yet.
func Kill(pid int, start uint64, tree bool) (*KillResult, error) {
	return nil, errors.New("kill: not supported on this operating system yet")
}
