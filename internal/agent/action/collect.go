package action

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
)

// Collected is the output of collect.
type Collected struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Collect reads the regular file at path (at most MaxCollectBytes) and
// uploads it for command id. The server stores it by the SHA-256 it
// computes itself; the path is only a label there.
func (e *Executor) Collect(ctx context.Context, id, path string) (*Collected, error) {
	if e.opts.Uploader == nil {
		return nil, errors.New("collect: no uploader")
	}
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("collect: %q is not an absolute path", path)
	}
	data, err := readRegular(path, e.opts.MaxCollectBytes)
	if err != nil {
		return nil, fmt.Errorf("collect: %w", err)
	}
	sum := sha256.Sum256(data)
	c := &Collected{Path: path, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
	got, err := e.opts.Uploader.UploadFile(ctx, id, data)
	if err != nil {
		return nil, fmt.Errorf("collect: upload: %w", err)
	}
	if got != c.SHA256 {
		return nil, fmt.Errorf("collect: the server stored SHA-256 %s, the file has %s", got, c.SHA256)
	}
	return c, nil
}

// readRegular reads a regular file of at most max bytes. Devices, FIFOs
// and directories are refused (reading /dev/zero would never end).
func readRegular(path string, max int64) ([]byte, error) {
	f, err := openNonblock(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d-byte limit", path, fi.Size(), max)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s grew past the %d-byte limit while being read", path, max)
	}
	return data, nil
}
