package rawio

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// atFDCWD is AT_FDCWD (-100) as a system call argument.
const atFDCWD = ^uintptr(99)

// ReadFile reads path into buf with open, one read and close, and returns
// the bytes read.
func ReadFile(path string, buf []byte) (int, error) {
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

// Readlink returns the target of the symbolic link path (at most len(buf)
// bytes of it; a longer one is cut).
func Readlink(path string, buf []byte) (string, error) {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return "", err
	}
	if len(buf) == 0 {
		return "", unix.EINVAL
	}
	n, _, e := unix.RawSyscall6(unix.SYS_READLINKAT, atFDCWD, uintptr(unsafe.Pointer(p)),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
	if e != 0 {
		return "", e
	}
	return string(buf[:n]), nil
}
