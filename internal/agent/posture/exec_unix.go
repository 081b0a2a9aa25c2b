//go:build unix

package posture

import (
	"io/fs"
	"os/exec"
	"strconv"
	"syscall"
)

// setProcessGroup puts the command in its own process group and makes the
// timeout kill the group, so `sh -c` pipelines die with their shell.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

func fileOwner(fi fs.FileInfo) (uid, gid uint32, err error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, errNoStat
	}
	return st.Uid, st.Gid, nil
}

// inodeOf names the file's device and inode, so a file replaced by rename
// counts as changed even with the same size and time.
func inodeOf(fi fs.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return strconv.FormatUint(uint64(st.Dev), 10) + ":" + strconv.FormatUint(st.Ino, 10)
	}
	return ""
}
