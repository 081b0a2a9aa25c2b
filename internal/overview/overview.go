package overview

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Levels are the Sigma levels in rank order; a [NumLevels]int64 holds one
// count per level, indexed by rank (unknown levels count as informational,
// as store/sqlite ranks them).
var Levels = [NumLevels]string{"informational", "low", "medium", "high", "critical"}

// NumLevels is the number of Sigma levels.
const NumLevels = 5

// Bounds on a Window.
const (
	MaxBuckets = 1000
	MaxTop     = 100
	DefaultTop = 10
)

// Window selects the alerts first seen in [Since, Until) and says how to
// bucket them.
type Window struct {
	Since, Until time.Time
	// Bucket is the width of the histogram's buckets, counted from Since;
	// the last bucket may extend past Until.
	Bucket time.Duration
	// Top is how many hosts TopHosts holds (default DefaultTop).
	Top int
}

// ErrWindow is wrapped by Window.Check's errors.
var ErrWindow = errors.New("overview: bad window")

// Check validates w and fills its defaults.
func (w *Window) Check() error {
	switch {
	case w.Since.IsZero() || w.Until.IsZero():
		return fmt.Errorf("%w: since and until are required", ErrWindow)
	case !w.Since.Before(w.Until):
		return fmt.Errorf("%w: since must be before until", ErrWindow)
	case w.Bucket <= 0:
		return fmt.Errorf("%w: the bucket width must be positive", ErrWindow)
	case w.Top < 0 || w.Top > MaxTop:
		return fmt.Errorf("%w: top must be from 0 to %d", ErrWindow, MaxTop)
	}
	if w.NumBuckets() > MaxBuckets {
		return fmt.Errorf("%w: more than %d buckets", ErrWindow, MaxBuckets)
	}
	if w.Top == 0 {
		w.Top = DefaultTop
	}
	return nil
}

// NumBuckets is the number of buckets covering the window.
func (w Window) NumBuckets() int {
	span := w.Until.Sub(w.Since)
	n := span / w.Bucket
	if span%w.Bucket != 0 {
		n++
	}
	if n > MaxBuckets+1 {
		return MaxBuckets + 1
	}
	return int(n)
}

// Summary is what Store.AlertSummary reports for a window.
type Summary struct {
	Window Window
	// Buckets are consecutive from Since, NumBuckets of them, empty ones
	// included.
	Buckets []Bucket
	// Total counts the window's alerts by level.
	Total [NumLevels]int64
	// Rules are every rule with alerts in the window, most alerts first
	// (ties by rule id), with the title and tags of its newest alert.
	Rules []RuleCount
	// TopHosts are the Top hosts with the most alerts, most first (ties by
	// name).
	TopHosts []HostCount
}

// Bucket counts the alerts first seen in [Start, Start+Window.Bucket) by
// level.
type Bucket struct {
	Start  time.Time
	Counts [NumLevels]int64
}

// Sum is the bucket's count over all levels.
func (b Bucket) Sum() int64 {
	var n int64
	for _, c := range b.Counts {
		n += c
	}
	return n
}

// RuleCount is one rule's alert count in a window.
type RuleCount struct {
	RuleID, Title string
	Tags          []string
	Alerts        int64
}

// HostCount is one host's alert count in a window.
type HostCount struct {
	Host   string
	Alerts int64
}

// Store aggregates stored alerts.
type Store interface {
	// AlertSummary counts the alerts first seen in the window. The window
	// must have passed Check.
	AlertSummary(ctx context.Context, w Window) (*Summary, error)
}
