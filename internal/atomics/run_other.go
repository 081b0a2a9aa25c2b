//go:build !linux

package atomics

import "context"

// Runner runs atomic tests; on this platform it cannot be created.
type Runner struct{}

// NewRunner returns ErrUnsupported outside Linux.
func NewRunner(RunOptions) (*Runner, error) { return nil, ErrUnsupported }

// Sessions reports whether test shells get their own audit session.
func (r *Runner) Sessions() bool { return false }

// Close does nothing.
func (r *Runner) Close() {}

// Run returns ErrUnsupported.
func (r *Runner) Run(context.Context, *Test) (*Execution, error) { return nil, ErrUnsupported }

// Marker returns ErrUnsupported.
func Marker(context.Context, string) error { return ErrUnsupported }

// MarkerPath is the program Marker runs.
func MarkerPath() string { return "" }
