//go:build !unix

package posture

import (
	"io/fs"
	"os/exec"
)

func setProcessGroup(cmd *exec.Cmd) {}

func fileOwner(fi fs.FileInfo) (uid, gid uint32, err error) { return 0, 0, errNoStat }

func inodeOf(fi fs.FileInfo) string { return "" }
