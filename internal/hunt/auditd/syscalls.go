package auditd

// Audit architecture identifiers (AUDIT_ARCH_*) as they appear in arch=.
const (
	archX8664   = "c000003e"
	archI386    = "40000003"
	archAarch64 = "c00000b7"
)

// archNames names the common AUDIT_ARCH values.
var archNames = map[string]string{
	archX8664:   "x86_64",
	archI386:    "i386",
	archAarch64: "aarch64",
	"40000028":  "arm",
	"c0000015":  "ppc64le",
	"80000016":  "s390x",
}

// syscallNames maps arch and syscall number to the name auditd's enriched
// format would print, for the syscalls that detection rules and
// investigations care about (process, file, module, network, privilege and
// anti-forensics calls). The tables are deliberately partial: a number not
// listed simply gets no SYSCALL field.
var syscallNames = map[string]map[string]string{
	archX8664: {
		"0": "read", "1": "write", "2": "open", "3": "close", "4": "stat", "5": "fstat", "6": "lstat",
		"9": "mmap", "10": "mprotect", "13": "rt_sigaction", "14": "rt_sigprocmask", "16": "ioctl",
		"21": "access", "22": "pipe", "23": "select", "32": "dup", "33": "dup2", "39": "getpid",
		"41": "socket", "42": "connect", "43": "accept", "44": "sendto", "45": "recvfrom",
		"46": "sendmsg", "47": "recvmsg", "49": "bind", "50": "listen", "51": "getsockname",
		"52": "getpeername", "54": "setsockopt", "56": "clone", "57": "fork", "58": "vfork",
		"59": "execve", "60": "exit", "61": "wait4", "62": "kill", "63": "uname", "72": "fcntl",
		"76": "truncate", "77": "ftruncate", "79": "getcwd", "80": "chdir", "81": "fchdir",
		"82": "rename", "83": "mkdir", "84": "rmdir", "85": "creat", "86": "link", "87": "unlink",
		"88": "symlink", "89": "readlink", "90": "chmod", "91": "fchmod", "92": "chown",
		"93": "fchown", "94": "lchown", "95": "umask", "99": "sysinfo", "101": "ptrace",
		"103": "syslog", "105": "setuid", "106": "setgid", "109": "setpgid", "112": "setsid",
		"113": "setreuid", "114": "setregid", "117": "setresuid", "119": "setresgid",
		"121": "getpgid", "133": "mknod", "135": "personality", "155": "pivot_root",
		"156": "_sysctl", "157": "prctl", "159": "adjtimex", "160": "setrlimit", "161": "chroot",
		"165": "mount", "166": "umount2", "167": "swapon", "169": "reboot", "170": "sethostname",
		"171": "setdomainname", "175": "init_module", "176": "delete_module", "188": "setxattr",
		"189": "lsetxattr", "190": "fsetxattr", "197": "removexattr", "200": "tkill",
		"217": "getdents64", "228": "clock_gettime", "231": "exit_group", "234": "tgkill",
		"257": "openat", "258": "mkdirat", "259": "mknodat", "260": "fchownat", "263": "unlinkat",
		"264": "renameat", "265": "linkat", "266": "symlinkat", "268": "fchmodat",
		"269": "faccessat", "272": "unshare", "288": "accept4", "298": "perf_event_open",
		"304": "open_by_handle_at", "305": "clock_adjtime", "308": "setns",
		"310": "process_vm_readv", "311": "process_vm_writev", "313": "finit_module",
		"316": "renameat2", "319": "memfd_create", "321": "bpf", "322": "execveat",
		"425": "io_uring_setup", "434": "pidfd_open", "435": "clone3", "437": "openat2",
		"438": "pidfd_getfd",
	},
	archI386: {
		"1": "exit", "2": "fork", "3": "read", "4": "write", "5": "open", "6": "close",
		"10": "unlink", "11": "execve", "14": "mknod", "15": "chmod", "21": "mount",
		"23": "setuid", "26": "ptrace", "37": "kill", "38": "rename", "39": "mkdir",
		"40": "rmdir", "54": "ioctl", "61": "chroot", "102": "socketcall", "103": "syslog",
		"116": "sysinfo", "120": "clone", "128": "init_module", "129": "delete_module",
		"132": "getpgid", "136": "personality", "350": "finit_module", "356": "memfd_create",
		"357": "bpf", "358": "execveat",
	},
	archAarch64: {
		"33": "mknodat", "35": "unlinkat", "38": "renameat", "40": "mount", "51": "chroot",
		"56": "openat", "92": "personality", "93": "exit", "94": "exit_group", "105": "init_module",
		"106": "delete_module", "116": "syslog", "117": "ptrace", "129": "kill", "146": "setuid",
		"179": "sysinfo", "198": "socket", "200": "bind", "203": "connect", "220": "clone",
		"221": "execve", "273": "finit_module", "276": "renameat2", "279": "memfd_create",
		"280": "bpf", "281": "execveat",
	},
}

// syscallName returns the name of the syscall numbered nr on arch, or "".
func syscallName(arch, nr string) string {
	return syscallNames[arch][nr]
}

// isExec reports whether nr on arch is execve or execveat.
func isExec(arch, nr string) bool {
	switch syscallName(arch, nr) {
	case "execve", "execveat":
		return true
	}
	return false
}
