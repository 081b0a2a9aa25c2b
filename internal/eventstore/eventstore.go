// Package eventstore declares how Vigil stores and searches events: the
// types and the interfaces a backend (store/sqlite, later store/postgres)
// implements. It holds no storage code.
//
// Any server-side package may import eventstore; agents must not.
package eventstore

import (
	"context"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
)

// Stored is one event with its delivery identity. (AgentID, BootEpoch, Seq)
// is unique: storing the same triple twice keeps the first copy.
type Stored struct {
	AgentID   string
	BootEpoch uint64
	Seq       uint64
	Host      string
	Event     *event.Event
}

// Inserted reports, for one input of Insert, the event's row id and whether
// detection still has to run on it: true for a new row and for a row stored
// earlier whose detection never completed (a crash between the two).
type Inserted struct {
	ID        int64
	NeedsScan bool
	Duplicate bool // the triple was already stored
}

// Record is an event as search returns it.
type Record struct {
	ID        int64
	AgentID   string
	BootEpoch uint64
	Seq       uint64
	Host      string
	Time      time.Time
	Product   string
	Services  []string
	Category  []string
	Fields    []event.Field
}

// FieldFilter selects events whose field Name equals Value (case-insensitive).
type FieldFilter struct{ Name, Value string }

// Query selects events. Zero fields do not filter. Results are newest first;
// Before (a row id) continues a previous page.
type Query struct {
	Host     string
	AgentID  string
	Category string
	From, To time.Time
	Fields   []FieldFilter
	Text     string // full-text search over all values
	Limit    int    // default 100, at most 1,000
	Before   int64
}

// Retention bounds what is kept: events older than MaxAge, and the oldest
// events beyond MaxBytes, are deleted.
type Retention struct {
	MaxAge   time.Duration
	MaxBytes int64
}

// Store stores, searches and expires events.
type Store interface {
	// Insert stores new events; it need not reach the disk before it
	// returns (MarkScanned does).
	Insert(ctx context.Context, evs []Stored) ([]Inserted, error)
	// MarkScanned records that detection finished for the events. When it
	// returns, this and every earlier write (the events' Insert included)
	// are durable: the detection worker acknowledges the bus after it, and
	// the bus then forgets the batch.
	MarkScanned(ctx context.Context, ids []int64) error
	Search(ctx context.Context, q Query) ([]Record, error)
	Get(ctx context.Context, id int64) (Record, error)
	// Expire applies the retention policy and returns how many events it deleted.
	Expire(ctx context.Context, r Retention, now time.Time) (int64, error)
	// Stats reports the stored event count and bytes used.
	Stats(ctx context.Context) (count int64, bytes int64, err error)
}
