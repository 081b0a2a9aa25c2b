//go:build !unix

package spool

import (
	"os"
	"path/filepath"
)

// lockDir opens dir/lock; there is no advisory lock on this platform.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
}

// syncDir is a no-op: directories cannot be fsynced on this platform.
func syncDir(string) error { return nil }
