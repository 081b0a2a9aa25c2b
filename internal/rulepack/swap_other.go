//go:build !linux

package rulepack

import "errors"

// exchange would swap the directories a and b in one step; only Linux has
// that, so elsewhere the caller falls back to two renames.
func exchange(a, b string) error { return errors.ErrUnsupported }
