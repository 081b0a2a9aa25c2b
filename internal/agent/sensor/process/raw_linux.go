package process

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The per-exec enrichment reads /proc files and stats the executable with
// raw system calls: work the kernel does from memory (procfs, and the inode
// of a file that was just executed, so cached), never waiting for I/O. A
// normal system call tells the scheduler it may block; when it lasts a
// sysmon tick (20 µs) while the other P is busy, the runtime hands its P to
// another thread and resets sysmon to 20 µs naps, dozens of context
// switches for one open of /proc/PID/stat. Raw calls skip that bookkeeping.

// atFDCWD is AT_FDCWD (-100) as a system call argument.
const atFDCWD = ^uintptr(99)

// rawReadFile reads path into buf with open, one read and close, and
// returns the bytes read.
func rawReadFile(path string, buf []byte) (int, error) {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return 0, err
	}
	fd, _, e := unix.RawSyscall6(unix.SYS_OPENAT, atFDCWD, uintptr(unsafe.Pointer(p)),
		uintptr(unix.O_RDONLY|unix.O_CLOEXEC), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	var n uintptr
	if len(buf) > 0 {
		n, _, e = unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
	}
	unix.RawSyscall(unix.SYS_CLOSE, fd, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// rawStat is stat(2) (following symbolic links) as a raw system call.
func rawStat(path string, st *syscall.Stat_t) error {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return err
	}
	_, _, e := unix.RawSyscall6(unix.SYS_NEWFSTATAT, atFDCWD, uintptr(unsafe.Pointer(p)),
		uintptr(unsafe.Pointer(st)), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
