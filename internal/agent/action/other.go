//go:build !linux

package action

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"time"
)

var errUnsupported = errors.New("not supported on this operating system yet")

// NetResult is the output of isolate, release, block and unblock.
type NetResult struct{}

// Quarantined describes one quarantined file.
type Quarantined struct{}

func openNonblock(path string) (*os.File, error) { return os.Open(path) }

// Quarantine is not supported on this system yet.
func (e *Executor) Quarantine(path, commandID string) (*Quarantined, error) {
	return nil, errUnsupported
}

// Restore is not supported on this system yet.
func (e *Executor) Restore(id string) (*Quarantined, error) { return nil, errUnsupported }

// Isolate is not supported on this system yet.
func (e *Executor) Isolate(ctx context.Context, extra []netip.Prefix) (*NetResult, error) {
	return nil, errUnsupported
}

// Release is not supported on this system yet.
func (e *Executor) Release(ctx context.Context) (*NetResult, error) { return nil, errUnsupported }

// Block is not supported on this system yet.
func (e *Executor) Block(ctx context.Context, p netip.Prefix, d time.Duration) (*NetResult, error) {
	return nil, errUnsupported
}

// Unblock is not supported on this system yet.
func (e *Executor) Unblock(ctx context.Context, p netip.Prefix) (*NetResult, error) {
	return nil, errUnsupported
}

// ApplySaved does nothing on this system.
func (e *Executor) ApplySaved(ctx context.Context) error { return nil }

// Query is not supported on this system yet.
func Query(name string, args map[string]string) (any, error) { return nil, errUnsupported }

func mkdirPrivate(d string) error { return os.MkdirAll(d, 0o700) }

func parsePrefixes(s string) ([]netip.Prefix, error) { return nil, nil }
