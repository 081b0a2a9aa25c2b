package fim

import (
	"path/filepath"
	"strings"
)

// Category lists. Events point at these shared slices; nothing may modify
// them.
var (
	catFile        = []string{"file_event"}
	catPersistence = []string{"file_event", "persistence"}
)

// persistenceType classifies path as a place where an attacker can make
// code run again (at boot, on a schedule, at login), or returns "".
func persistenceType(path string) string {
	base := filepath.Base(path)
	dir := filepath.Dir(path)
	switch {
	case path == "/etc/ld.so.preload" || base == "ld.so.preload":
		return PersistLDPreload
	case base == "authorized_keys" || base == "authorized_keys2":
		return PersistSSHAuthorizedKeys
	case strings.Contains(path, "/systemd/system/") || strings.Contains(path, "/systemd/user/") ||
		strings.HasSuffix(path, "/systemd/system") || strings.HasSuffix(path, "/systemd/user"):
		return PersistSystemd
	case isShellProfile(path, base, dir):
		return PersistShellProfile
	}
	for p := path; p != "/" && p != "." && p != ""; p = filepath.Dir(p) {
		b := filepath.Base(p)
		if strings.HasPrefix(b, "cron") || strings.HasSuffix(b, "crontab") || b == "crontabs" {
			return PersistCron
		}
		if p == "/var/spool/cron" {
			return PersistCron
		}
	}
	return ""
}

func isShellProfile(path, base, dir string) bool {
	switch path {
	case "/etc/profile", "/etc/bash.bashrc", "/etc/bashrc", "/etc/zshrc", "/etc/zprofile", "/etc/environment":
		return true
	}
	if dir == "/etc/profile.d" {
		return true
	}
	switch base {
	case ".bashrc", ".profile", ".bash_profile", ".bash_login", ".bash_logout", ".zshrc", ".zprofile", ".zlogin":
		return true
	}
	return false
}
