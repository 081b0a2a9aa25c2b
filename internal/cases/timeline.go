package cases

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/store"
)

// dossier is everything known about one case, read once for a timeline or
// a report.
type dossier struct {
	c        *Case
	alerts   []*alert.Alert
	missing  []int64 // alert ids no longer readable
	events   []eventstore.Record
	expired  int // event ids of the alerts no longer stored
	skipped  int // event ids not read: over MaxTimelineEvents
	stored   []Entry
	comments []Comment
	evidence []Evidence
}

func (s *Service) gather(ctx context.Context, id int64) (*dossier, error) {
	c, err := s.opts.Store.GetCase(ctx, id)
	if err != nil {
		return nil, err
	}
	d := &dossier{c: c}
	for _, aid := range c.AlertIDs {
		a, err := s.opts.Alerts.GetAlert(ctx, aid)
		if errors.Is(err, store.ErrNotFound) {
			d.missing = append(d.missing, aid)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading alert %d of case %d: %w", aid, id, err)
		}
		d.alerts = append(d.alerts, a)
	}
	if s.opts.Events != nil {
		seen := map[int64]bool{}
		for _, a := range d.alerts {
			for _, eid := range a.EventIDs {
				if seen[eid] {
					continue
				}
				seen[eid] = true
				if len(d.events)+d.expired >= s.opts.MaxTimelineEvents {
					d.skipped++
					continue
				}
				r, err := s.opts.Events.Get(ctx, eid)
				if errors.Is(err, store.ErrNotFound) {
					d.expired++
					continue
				}
				if err != nil {
					return nil, fmt.Errorf("reading event %d of case %d: %w", eid, id, err)
				}
				d.events = append(d.events, r)
			}
		}
	}
	if d.stored, err = s.opts.Store.CaseTimeline(ctx, id); err != nil {
		return nil, err
	}
	if d.comments, err = s.opts.Store.CaseComments(ctx, id); err != nil {
		return nil, err
	}
	if d.evidence, err = s.opts.Store.CaseEvidence(ctx, id); err != nil {
		return nil, err
	}
	return d, nil
}

// timeline merges the stored entries with the alerts' occurrences and
// their events, oldest first (stored order breaks ties).
func (d *dossier) timeline() []Entry {
	out := slices.Clone(d.stored)
	for _, a := range d.alerts {
		out = append(out, Entry{CaseID: d.c.ID, At: a.FirstSeen, Kind: EntryAlertSeen, Ref: strconv.FormatInt(a.ID, 10),
			Detail: fmt.Sprintf("alert %d first seen: %s on %s (level %s)", a.ID, a.RuleTitle, a.Host, a.Level)})
		if a.Count > 1 && a.LastSeen.After(a.FirstSeen) {
			out = append(out, Entry{CaseID: d.c.ID, At: a.LastSeen, Kind: EntryAlertSeen, Ref: strconv.FormatInt(a.ID, 10),
				Detail: fmt.Sprintf("alert %d last seen (%d occurrences): %s on %s", a.ID, a.Count, a.RuleTitle, a.Host)})
		}
	}
	for _, e := range d.events {
		out = append(out, Entry{CaseID: d.c.ID, At: e.Time, Kind: EntryEventOccured, Ref: strconv.FormatInt(e.ID, 10),
			Detail: fmt.Sprintf("event %d on %s: %s", e.ID, e.Host, eventSummary(e))})
	}
	slices.SortStableFunc(out, func(a, b Entry) int { return a.At.Compare(b.At) })
	return out
}

// Timeline returns every recorded change of a case together with, derived
// from its alerts when read, each alert's first and last occurrence and
// each stored event of those alerts (up to MaxTimelineEvents), oldest
// first.
func (s *Service) Timeline(ctx context.Context, id int64) ([]Entry, error) {
	d, err := s.gather(ctx, id)
	if err != nil {
		return nil, err
	}
	return d.timeline(), nil
}

// summaryFields are the fields an event's one-line summary shows, in order.
var summaryFields = []string{"CommandLine", "Image", "TargetFilename", "TargetObject", "DestinationIp",
	"DestinationHostname", "QueryName", "User", "TargetUserName"}

func eventSummary(r eventstore.Record) string {
	var parts []string
	if len(r.Category) > 0 {
		parts = append(parts, strings.Join(r.Category, "/"))
	}
	for _, name := range summaryFields {
		for _, f := range r.Fields {
			if event.SameName(f.Name, name) && f.Value != "" {
				parts = append(parts, name+"="+firstLine(f.Value, 200))
				break
			}
		}
		if len(parts) >= 4 {
			break
		}
	}
	if len(parts) == 0 {
		return "(no fields)"
	}
	return strings.Join(parts, " ")
}
