package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/command"
	"github.com/vigil-edr/vigil/internal/detect/sigma"
	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
	"github.com/vigil-edr/vigil/internal/respond"
	"github.com/vigil-edr/vigil/internal/ruleset"
)

// The alert queue and the alert detail page. The queue is rendered by the
// server and kept current by alerts.js from the alert stream (stream.go);
// triage goes through the API with the session's CSRF token.

// alertFilter is the queue's filter, from the page's query string: the same
// names as GET /api/v1/alerts and its stream, so the page passes its query
// on unchanged.
type alertFilter struct {
	States   []string
	MinLevel string
	Host     string
	RuleID   string
}

// openStates is the queue's default: what still needs someone.
var openStates = []string{string(alert.StateNew), string(alert.StateAcknowledged)}

func parseAlertFilter(v url.Values) (alertFilter, alert.Filter, *Error) {
	var af alertFilter
	var f alert.Filter
	for _, st := range v["state"] {
		if st == "" || st == "open" {
			continue
		}
		state, e := parseState(st)
		if e != nil {
			return af, f, e
		}
		if !slices.Contains(f.States, state) {
			f.States = append(f.States, state)
			af.States = append(af.States, st)
		}
	}
	if len(v["state"]) == 0 || slices.Contains(v["state"], "open") {
		af.States = append(af.States, openStates...)
		f.States = append(f.States, alert.StateNew, alert.StateAcknowledged)
	}
	if lv := v.Get("min_level"); lv != "" {
		if !slices.Contains(levels, lv) {
			return af, f, errorf(CodeBadRequest, "min_level must be one of %s", strings.Join(levels, ", "))
		}
		af.MinLevel, f.MinLevel = lv, lv
	}
	for _, p := range []struct {
		name string
		dst  *string
	}{{"host", &af.Host}, {"rule_id", &af.RuleID}} {
		s := v.Get(p.name)
		if e := checkString(p.name, s, maxNameLen, false); e != nil {
			return af, f, e
		}
		*p.dst = s
	}
	f.Host, f.RuleID = af.Host, af.RuleID
	return af, f, nil
}

// query is the filter as a query string (without "?").
func (af alertFilter) query() string {
	v := url.Values{}
	for _, s := range af.States {
		v.Add("state", s)
	}
	if af.MinLevel != "" {
		v.Set("min_level", af.MinLevel)
	}
	if af.Host != "" {
		v.Set("host", af.Host)
	}
	if af.RuleID != "" {
		v.Set("rule_id", af.RuleID)
	}
	return v.Encode()
}

// HasState is for the filter form's checkboxes.
func (af alertFilter) HasState(s string) bool { return slices.Contains(af.States, s) }

type alertQueueData struct {
	Filter     alertFilter
	Alerts     []alert.Alert
	LastID     int64
	StreamURL  string
	Levels     []string
	States     []string
	CanTriage  bool
	CanSuppres bool
	More       bool
	OlderURL   string
	Query      string
}

const queuePage = 200

func (s *Server) alertQueue(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.opts.Alerts == nil {
		return nil, notConfigured("alerts")
	}
	q := r.URL.Query()
	af, f, e := parseAlertFilter(q)
	if e != nil {
		return nil, e
	}
	if b := q.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return nil, errorf(CodeBadRequest, "before must be a positive integer")
		}
		f.Before = n
	}
	f.Limit = queuePage
	as, err := s.opts.Alerts.ListAlerts(r.Context(), f)
	if err != nil {
		return nil, err
	}
	d := alertQueueData{Filter: af, Alerts: as, Levels: levels, Query: af.query(),
		States:    []string{string(alert.StateNew), string(alert.StateAcknowledged), string(alert.StateResolved), string(alert.StateFalsePositive)},
		CanTriage: who(r).role.Allows(authz.PermAlertsTriage), CanSuppres: who(r).role.Allows(authz.PermSuppressWrite)}
	// The stream continues from the newest alert in the whole queue, not
	// just this page. An older page's stream watches that page (the alerts
	// below before) for changes and gets no new alerts.
	if len(as) > 0 {
		d.LastID = as[0].ID
	} else if f.Before == 0 {
		if top, err := s.opts.Alerts.ListAlerts(r.Context(), alert.Filter{Limit: 1}); err == nil && len(top) > 0 {
			d.LastID = top[0].ID
		}
	}
	sq := af.query()
	if sq != "" {
		sq += "&"
	}
	d.StreamURL = "/api/v1/alerts/stream?" + sq + "after=" + strconv.FormatInt(d.LastID, 10)
	if f.Before != 0 {
		d.StreamURL += "&before=" + strconv.FormatInt(f.Before, 10)
	}
	if len(as) == queuePage {
		d.More, d.OlderURL = true, "/alerts?"+sq+"before="+strconv.FormatInt(as[len(as)-1].ID, 10)
	}
	return d, nil
}

// ---- detail ----

type fieldRow struct {
	Name, Value string
	Matched     bool
}

type ruleView struct {
	ID, Title, Description, Level, Path, Status, Author string
	Tags                                                []string
	Logsource                                           string
	Condition                                           []string
	Searches                                            []searchView
	Found                                               bool
}

type searchView struct {
	Name  string
	Specs []specView // OR of groups is flattened: Group numbers the map
}

type specView struct {
	Group     int
	Field     string
	Modifiers string
	Values    []string
}

type procView struct {
	EventID     int64
	Depth       int
	Image       string
	CommandLine string
	PID, User   string
	Time        time.Time
	Self        bool
	Missing     bool // known only from the child's Parent* fields
}

type timelineRow struct {
	ID       int64
	Time     time.Time
	Category string
	Summary  string
	At       bool // the alert's triggering event
}

type alertDetailData struct {
	Alert     *alert.Alert
	Rule      ruleView
	Event     *eventstore.Record
	Fields    []fieldRow
	Matched   []fieldRow
	Ancestry  []procView
	Children  []procView
	Timeline  []timelineRow
	Comments  []alert.Comment
	Raw       string // the event as the API returns it, indented
	CanTriage bool
	CanSupp   bool
	Act       alertActions
}

// alertActions are the response-action forms of the alert page, from the
// triggering event: kill its process (only with both the pid and the
// start time, so a reused pid is never hit) and quarantine its file. Each
// is shown to roles holding actions:request and the type's permission;
// the API and respond check again.
type alertActions struct {
	AgentID, PID, StartTime, File string
	Kill, Quarantine              bool
	// NoStart: the role may kill but the event lacks the start time.
	NoStart bool
}

// startTimeField is the event field with a process's start time in clock
// ticks since boot (/proc/PID/stat field 22), what kill needs.
const startTimeField = "ProcessStartTime"

func (s *Server) alertActionsFor(r *http.Request, a *alert.Alert, rec eventstore.Record) alertActions {
	role := who(r).role
	if s.opts.Actions == nil || a.AgentID == "" || !role.Allows(authz.PermActionsRequest) {
		return alertActions{}
	}
	aa := alertActions{AgentID: a.AgentID, PID: fieldValue(rec.Fields, "ProcessId"), StartTime: fieldValue(rec.Fields, startTimeField)}
	for _, name := range []string{"TargetFilename", "Image"} {
		if v := fieldValue(rec.Fields, name); strings.HasPrefix(v, "/") {
			aa.File = v
			break
		}
	}
	if role.Allows(respond.Permission(command.Kill)) && aa.PID != "" {
		aa.Kill = aa.StartTime != ""
		aa.NoStart = !aa.Kill
	}
	aa.Quarantine = aa.File != "" && role.Allows(respond.Permission(command.Quarantine))
	return aa
}

// Bounds on what the detail page reads.
const (
	maxAncestry     = 8
	maxChildren     = 20
	timelineWindow  = 10 * time.Minute
	timelineEntries = 100
)

func (s *Server) alertDetail(w http.ResponseWriter, r *http.Request) (any, error) {
	a, err := s.alertByPath(r)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	d := alertDetailData{Alert: a, Rule: s.ruleView(a.RuleID),
		CanTriage: who(r).role.Allows(authz.PermAlertsTriage), CanSupp: who(r).role.Allows(authz.PermSuppressWrite)}
	if d.Rule.Title == "" {
		d.Rule.Title = a.RuleTitle
	}
	for _, f := range a.Fields {
		d.Matched = append(d.Matched, fieldRow{Name: f.Name, Value: f.Value, Matched: true})
	}
	if cs, err := s.opts.Alerts.Comments(ctx, a.ID); err == nil {
		d.Comments = cs
	} else {
		return nil, err
	}
	if s.opts.Events == nil || len(a.EventIDs) == 0 {
		return d, nil
	}
	rec, err := s.opts.Events.Get(ctx, a.EventIDs[0])
	if err != nil {
		// Retention may have removed it; the page still shows the alert.
		return d, nil
	}
	d.Event = &rec
	// Not HTML-escaped here: the template escapes it, and \u003c would
	// make hostile values unreadable.
	var raw strings.Builder
	enc := json.NewEncoder(&raw)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(toEventJSON(rec)); err == nil {
		d.Raw = raw.String()
	}
	for _, f := range rec.Fields {
		d.Fields = append(d.Fields, fieldRow{Name: f.Name, Value: f.Value, Matched: matchedField(a.Fields, f)})
	}
	d.Act = s.alertActionsFor(r, a, rec)
	d.Ancestry, d.Children = s.ancestry(r, rec)
	d.Timeline = s.timeline(r, rec)
	return d, nil
}

func matchedField(matched []event.Field, f event.Field) bool {
	for _, m := range matched {
		if event.SameName(m.Name, f.Name) && m.Value == f.Value {
			return true
		}
	}
	return false
}

func fieldValue(fs []event.Field, name string) string {
	for _, f := range fs {
		if event.SameName(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// ancestry walks the process tree of a process_creation event through the
// stored events of its host: each parent is the newest process_creation
// event at or before the child whose ProcessId is the child's
// ParentProcessId (process ids are reused, so older matches are not
// taken). A parent that was not stored is shown from the child's Parent*
// fields. Children are the events whose ParentProcessId is the process's
// id, after it started.
func (s *Server) ancestry(r *http.Request, rec eventstore.Record) (chain, children []procView) {
	pid := fieldValue(rec.Fields, "ProcessId")
	if pid == "" {
		return nil, nil
	}
	ctx := r.Context()
	self := procFrom(rec)
	self.Self = true
	chain = []procView{self}
	cur := rec
	for len(chain) < maxAncestry {
		ppid := fieldValue(cur.Fields, "ParentProcessId")
		if ppid == "" || ppid == "0" {
			break
		}
		ps, err := s.opts.Events.Search(ctx, eventstore.Query{Host: rec.Host, Category: "process_creation",
			To: cur.Time.Add(time.Millisecond), Fields: []eventstore.FieldFilter{{Name: "ProcessId", Value: ppid}}, Limit: 1})
		if err != nil || len(ps) == 0 {
			if img := fieldValue(cur.Fields, "ParentImage"); img != "" {
				chain = append(chain, procView{Image: img, CommandLine: fieldValue(cur.Fields, "ParentCommandLine"),
					PID: ppid, User: fieldValue(cur.Fields, "ParentUser"), Missing: true})
			}
			break
		}
		cur = ps[0]
		chain = append(chain, procFrom(cur))
	}
	slices.Reverse(chain)
	for i := range chain {
		chain[i].Depth = i
	}
	cs, err := s.opts.Events.Search(ctx, eventstore.Query{Host: rec.Host, Category: "process_creation", From: rec.Time,
		Fields: []eventstore.FieldFilter{{Name: "ParentProcessId", Value: pid}}, Limit: maxChildren})
	if err == nil {
		for _, c := range cs {
			if c.ID == rec.ID {
				continue
			}
			p := procFrom(c)
			p.Depth = len(chain)
			children = append(children, p)
		}
		slices.Reverse(children)
	}
	return chain, children
}

func procFrom(rec eventstore.Record) procView {
	return procView{EventID: rec.ID, Image: fieldValue(rec.Fields, "Image"), CommandLine: fieldValue(rec.Fields, "CommandLine"),
		PID: fieldValue(rec.Fields, "ProcessId"), User: fieldValue(rec.Fields, "User"), Time: rec.Time}
}

// timeline is the host's events around the triggering event, oldest first.
func (s *Server) timeline(r *http.Request, rec eventstore.Record) []timelineRow {
	evs, err := s.opts.Events.Search(r.Context(), eventstore.Query{Host: rec.Host,
		From: rec.Time.Add(-timelineWindow), To: rec.Time.Add(timelineWindow), Limit: timelineEntries})
	if err != nil {
		return nil
	}
	out := make([]timelineRow, 0, len(evs))
	for _, e := range evs {
		out = append(out, timelineRow{ID: e.ID, Time: e.Time, Category: strings.Join(e.Category, ", "),
			Summary: summarize(e.Fields), At: e.ID == rec.ID})
	}
	slices.SortStableFunc(out, func(a, b timelineRow) int { return a.Time.Compare(b.Time) })
	return out
}

// summarize picks the field that says most about an event.
func summarize(fs []event.Field) string {
	for _, name := range []string{"CommandLine", "Image", "TargetFilename", "DestinationHostname", "DestinationIp", "QueryName", "TargetUserName", "User"} {
		if v := fieldValue(fs, name); v != "" {
			return name + ": " + v
		}
	}
	var parts []string
	for i, f := range fs {
		if i == 3 {
			break
		}
		parts = append(parts, f.Name+"="+f.Value)
	}
	return strings.Join(parts, " ")
}

// ruleSets is what the detail page needs beyond Rules: the parsed rules.
// *ruleset.Manager has it.
type ruleSets interface{ Current() *ruleset.Set }

func (s *Server) ruleView(id string) ruleView {
	rs, ok := s.opts.Rules.(ruleSets)
	if !ok || id == "" {
		return ruleView{ID: id}
	}
	set := rs.Current()
	if set == nil {
		return ruleView{ID: id}
	}
	for _, rl := range set.Rules {
		if rl.ID != id {
			continue
		}
		v := ruleView{ID: rl.ID, Title: rl.Title, Description: rl.Description, Level: rl.Level.String(), Path: rl.Path,
			Status: rl.Status, Author: rl.Author, Tags: rl.Tags, Found: true,
			Logsource: strings.Trim(strings.Join([]string{rl.Logsource.Product, rl.Logsource.Category, rl.Logsource.Service}, " / "), " /")}
		if det := rl.Detection; det != nil {
			v.Condition = det.Condition
			for _, name := range det.Order {
				sr := det.Searches[name]
				if sr == nil {
					continue
				}
				sv := searchView{Name: name}
				for gi, group := range sr.Maps {
					for _, fs := range group {
						sv.Specs = append(sv.Specs, specOf(gi, fs))
					}
				}
				if sr.Keywords != nil {
					sv.Specs = append(sv.Specs, specOf(0, *sr.Keywords))
				}
				v.Searches = append(v.Searches, sv)
			}
		}
		return v
	}
	return ruleView{ID: id}
}

func specOf(group int, fs sigma.FieldSpec) specView {
	sv := specView{Group: group + 1, Field: fs.Field, Modifiers: strings.Join(fs.Modifiers, "|")}
	if sv.Field == "" {
		sv.Field = "(keywords)"
	}
	for _, v := range fs.Values {
		if v.Null {
			sv.Values = append(sv.Values, "null")
			continue
		}
		sv.Values = append(sv.Values, v.S)
	}
	return sv
}
