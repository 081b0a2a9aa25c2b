package web

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
)

// searchRanges are the quick time ranges of the search form.
var searchRanges = []struct {
	name string
	span time.Duration
}{{"15m", 15 * time.Minute}, {"1h", time.Hour}, {"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}}

const (
	searchPageSize = 100
	searchFieldRow = 3 // field filter inputs shown
	maxCellPairs   = 6 // fields shown in a result row before the rest fold away
)

type searchData struct {
	// The form, as submitted.
	Host, AgentID, Category, Text, Range, From, To string
	Fields                                         []string
	Ranges                                         []string
	// Error is a problem with the form, shown above it.
	Error    string
	Results  []searchRow
	Searched bool
	// Older is the query string of the next (older) page; CSV and JSON
	// the export links for the whole search.
	Older, CSV, JSON string
}

type searchRow struct {
	eventstore.Record
	Head []event.Field // the first fields, shown in the row
	More []event.Field // the rest, folded
}

// searchPage is the event search: field filters, time range, free text;
// newest first, 100 a page, with export links for the whole search.
func (s *Server) searchPage(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.opts.Events == nil {
		return nil, notConfigured("events")
	}
	q := newQuery(r)
	d := searchData{Host: q.v.Get("host"), AgentID: q.v.Get("agent_id"), Category: q.v.Get("category"),
		Text: q.v.Get("q"), Range: q.v.Get("range"), From: q.v.Get("from"), To: q.v.Get("to")}
	for _, rg := range searchRanges {
		d.Ranges = append(d.Ranges, rg.name)
	}
	for _, f := range q.v["field"] {
		if f != "" {
			d.Fields = append(d.Fields, f)
		}
	}
	// Blank inputs the form always sends are not filters.
	for _, k := range []string{"host", "agent_id", "category", "q", "from", "to", "field", "range"} {
		vals := q.v[k][:0:0]
		for _, v := range q.v[k] {
			if v != "" {
				vals = append(vals, v)
			}
		}
		if len(vals) == 0 {
			delete(q.v, k)
		} else {
			q.v[k] = vals
		}
	}
	if len(r.URL.RawQuery) == 0 {
		d.Range = "24h" // a first visit shows the last day's newest events
	}
	for len(d.Fields) < searchFieldRow {
		d.Fields = append(d.Fields, "")
	}
	eq, e := eventQuery(q)
	if e == nil && d.Range != "" {
		found := false
		for _, rg := range searchRanges {
			if rg.name == d.Range {
				found = true
				if eq.From.IsZero() {
					eq.From = s.now().Add(-rg.span).UTC()
				}
			}
		}
		if !found {
			e = errorf(CodeBadRequest, "unknown range %q", clip(d.Range))
		}
	}
	before := q.before()
	if e == nil {
		e = q.err
	}
	if e != nil {
		d.Error = e.Message
		return d, nil
	}
	eq.Limit, eq.Before = searchPageSize, before
	recs, err := s.opts.Events.Search(r.Context(), eq)
	if err != nil {
		return nil, err
	}
	d.Searched = true
	d.Results = make([]searchRow, len(recs))
	for i, rec := range recs {
		n := min(len(rec.Fields), maxCellPairs)
		d.Results[i] = searchRow{Record: rec, Head: rec.Fields[:n], More: rec.Fields[n:]}
	}
	// Links keep the search as it resolved (an explicit from instead of a
	// range that would move).
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("host", eq.Host)
	set("agent_id", eq.AgentID)
	set("category", eq.Category)
	set("q", eq.Text)
	if !eq.From.IsZero() {
		v.Set("from", eq.From.Format(time.RFC3339))
	}
	if !eq.To.IsZero() {
		v.Set("to", eq.To.Format(time.RFC3339))
	}
	for _, f := range eq.Fields {
		v.Add("field", f.Name+"="+f.Value)
	}
	base := v.Encode()
	d.CSV = "/api/v1/events/export?" + join(base, "format=csv")
	d.JSON = "/api/v1/events/export?" + join(base, "format=json")
	if len(recs) == searchPageSize {
		d.Older = "/search?" + join(base, "before="+strconv.FormatInt(recs[len(recs)-1].ID, 10))
	}
	return d, nil
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "&" + b
}
