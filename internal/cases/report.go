package cases

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

//go:embed report.css
var reportCSS string

//go:embed report.html.tmpl
var reportTmpl string

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"dur": humanDuration,
}).Parse(reportTmpl))

// ReportCSP is the Content-Security-Policy of an incident report: nothing
// may load or run; only the report's own inline style block (by hash)
// applies; no page may frame it. The report carries the same policy in a
// meta element, less frame-ancestors (browsers ignore it there and log an
// error), so a saved copy opened from disk is as locked down as one served
// by Vigil.
var ReportCSP = metaCSP + "; frame-ancestors 'none'"

var metaCSP = "default-src 'none'; style-src 'sha256-" + cssHash() + "'; img-src 'none'; base-uri 'none'; form-action 'none'"

func cssHash() string {
	h := sha256.Sum256([]byte(reportCSS))
	return base64.StdEncoding.EncodeToString(h[:])
}

// reportData is what the template sees. Every string from a case, alert or
// event goes in as a plain string, so html/template escapes it for its
// context; no field is of a template.HTML-like type except CSS and CSP,
// which are constants of this package.
type reportData struct {
	CSS         template.CSS
	CSP         string
	Case        *Case
	Zone        string
	GeneratedAt string
	Created     string
	StatusAt    string
	First, Last string // earliest and latest activity of the alerts
	Deadlines   []deadlineRow
	RegHistory  []entryRow
	Hosts       []hostRow
	Alerts      []alertRow
	Missing     []int64
	Expired     int
	Skipped     int
	Evidence    []evidenceRow
	Timeline    []entryRow
	Comments    []commentRow
	Tactics     []string // distinct tactics over all alerts
	Techniques  []string // distinct technique ids over all alerts
}

type deadlineRow struct {
	Title, Basis, Anchor, Due, Sent string
	State                           DeadlineState
	Left                            time.Duration
}

type entryRow struct {
	At, Actor, Detail string
	Kind              EntryKind
}

type hostRow struct {
	Host, AgentIDs string
	Alerts         int
	First, Last    string
	Evidence       bool
}

type alertRow struct {
	ID                    int64
	RuleTitle, RuleID     string
	Level, Host, State    string
	Count                 int
	First, Last           string
	Tactics, Techniques   []string
	OtherTags             []string
	Fields                [][2]string
	Correlation           bool
	EventCount            int
	Assignee, StateChange string
}

type evidenceRow struct {
	Kind             EvidenceKind
	Ref, Name, Note  string
	Size             int64
	AddedBy, AddedAt string
	IsFile           bool
}

type commentRow struct{ At, Author, Text string }

// WriteReport renders the incident report of a case as one self-contained
// HTML document (inline CSS, no scripts, no external resources; printable)
// with times shown in loc (nil: UTC).
func (s *Service) WriteReport(ctx context.Context, w io.Writer, id int64, loc *time.Location) error {
	d, err := s.gather(ctx, id)
	if err != nil {
		return err
	}
	data := d.report(s.now(), loc)
	return reportTemplate.Execute(w, data)
}

func (d *dossier) report(now time.Time, loc *time.Location) *reportData {
	if loc == nil {
		loc = time.UTC
	}
	ft := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		l := t.In(loc)
		if loc == time.UTC {
			return l.Format("2006-01-02 15:04:05 UTC")
		}
		return l.Format("2006-01-02 15:04:05 MST (-07:00)") + " · " + t.UTC().Format("15:04 UTC")
	}
	c := d.c
	r := &reportData{
		CSS: template.CSS(reportCSS), CSP: metaCSP, Case: c, Zone: loc.String(),
		GeneratedAt: ft(now), Created: ft(c.CreatedAt), StatusAt: ft(c.StatusAt),
		Missing: d.missing, Expired: d.expired, Skipped: d.skipped,
	}
	for _, dl := range Deadlines(c, now) {
		r.Deadlines = append(r.Deadlines, deadlineRow{Title: dl.Title, Basis: dl.Basis, Anchor: ft(dl.Anchor),
			Due: ft(dl.Due), Sent: ft(dl.Sent), State: dl.State, Left: dl.Left})
	}
	for _, e := range d.stored {
		if e.Kind == EntryFlag || e.Kind == EntryAwareness || e.Kind == EntryNoticeSent {
			r.RegHistory = append(r.RegHistory, entryRow{At: ft(e.At), Actor: e.Actor, Detail: e.Detail, Kind: e.Kind})
		}
	}

	hosts := map[string]*hostRow{}
	host := func(name string) *hostRow {
		h := hosts[strings.ToLower(name)]
		if h == nil {
			h = &hostRow{Host: name}
			hosts[strings.ToLower(name)] = h
		}
		return h
	}
	type span struct{ first, last time.Time }
	spans := map[*hostRow]*span{}
	var first, last time.Time
	tactics, techniques := map[string]bool{}, map[string]bool{}
	for _, a := range d.alerts {
		h := host(a.Host)
		h.Alerts++
		if a.AgentID != "" && !strings.Contains(h.AgentIDs, a.AgentID) {
			if h.AgentIDs != "" {
				h.AgentIDs += ", "
			}
			h.AgentIDs += a.AgentID
		}
		sp := spans[h]
		if sp == nil {
			sp = &span{a.FirstSeen, a.LastSeen}
			spans[h] = sp
		}
		sp.first, sp.last = earliest(sp.first, a.FirstSeen), latest(sp.last, a.LastSeen)
		first, last = earliest(first, a.FirstSeen), latest(last, a.LastSeen)

		row := alertRow{ID: a.ID, RuleTitle: a.RuleTitle, RuleID: a.RuleID, Level: a.Level, Host: a.Host,
			State: string(a.State), Count: a.Count, First: ft(a.FirstSeen), Last: ft(a.LastSeen),
			Correlation: a.Correlation, EventCount: len(a.EventIDs), Assignee: a.Assignee}
		if a.StateBy != "" {
			row.StateChange = a.StateBy + ", " + ft(a.StateAt)
		}
		for _, tag := range a.Tags {
			switch kind, val := attackTag(tag); kind {
			case "tactic":
				row.Tactics = append(row.Tactics, val)
				tactics[val] = true
			case "technique":
				row.Techniques = append(row.Techniques, val)
				techniques[val] = true
			default:
				row.OtherTags = append(row.OtherTags, tag)
			}
		}
		for _, f := range a.Fields {
			row.Fields = append(row.Fields, [2]string{f.Name, f.Value})
		}
		r.Alerts = append(r.Alerts, row)
	}
	for _, ev := range d.evidence {
		if ev.Kind == EvidenceHost {
			host(ev.Ref).Evidence = true
		}
		row := evidenceRow{Kind: ev.Kind, Ref: ev.Ref, Name: ev.Name, Note: ev.Note, Size: ev.Size,
			AddedBy: ev.AddedBy, AddedAt: ft(ev.AddedAt), IsFile: ev.Kind == EvidenceFile}
		r.Evidence = append(r.Evidence, row)
	}
	for _, h := range hosts {
		if sp := spans[h]; sp != nil {
			h.First, h.Last = ft(sp.first), ft(sp.last)
		}
		r.Hosts = append(r.Hosts, *h)
	}
	sort.Slice(r.Hosts, func(i, j int) bool {
		if r.Hosts[i].Alerts != r.Hosts[j].Alerts {
			return r.Hosts[i].Alerts > r.Hosts[j].Alerts
		}
		return r.Hosts[i].Host < r.Hosts[j].Host
	})
	r.First, r.Last = ft(first), ft(last)
	for _, e := range d.timeline() {
		r.Timeline = append(r.Timeline, entryRow{At: ft(e.At), Actor: e.Actor, Detail: e.Detail, Kind: e.Kind})
	}
	for _, cm := range d.comments {
		r.Comments = append(r.Comments, commentRow{At: ft(cm.At), Author: cm.Author, Text: cm.Text})
	}
	r.Tactics, r.Techniques = sortedKeys(tactics), sortedKeys(techniques)
	return r
}

// tactics maps Sigma's ATT&CK tactic tags to the tactic's id and name.
var tactics = map[string]string{
	"reconnaissance":       "TA0043 Reconnaissance",
	"resource_development": "TA0042 Resource Development",
	"initial_access":       "TA0001 Initial Access",
	"execution":            "TA0002 Execution",
	"persistence":          "TA0003 Persistence",
	"privilege_escalation": "TA0004 Privilege Escalation",
	"defense_evasion":      "TA0005 Defense Evasion",
	"credential_access":    "TA0006 Credential Access",
	"discovery":            "TA0007 Discovery",
	"lateral_movement":     "TA0008 Lateral Movement",
	"collection":           "TA0009 Collection",
	"command_and_control":  "TA0011 Command and Control",
	"exfiltration":         "TA0010 Exfiltration",
	"impact":               "TA0040 Impact",
}

// attackTag classifies a Sigma tag: ("tactic", "TA0002 Execution"),
// ("technique", "T1059.004") or ("", "").
func attackTag(tag string) (kind, val string) {
	rest, ok := strings.CutPrefix(strings.ToLower(tag), "attack.")
	if !ok {
		return "", ""
	}
	if t, ok := tactics[strings.ReplaceAll(rest, "-", "_")]; ok {
		return "tactic", t
	}
	if len(rest) >= 5 && rest[0] == 't' && allDigits(rest[1:5]) {
		if len(rest) == 5 || (len(rest) == 9 && rest[5] == '.' && allDigits(rest[6:])) {
			return "technique", strings.ToUpper(rest)
		}
	}
	return "", ""
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// humanDuration shows a clock's time left or past: "2d 03h 15m".
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	d = d.Round(time.Minute)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h := d / time.Hour
	m := (d - h*time.Hour) / time.Minute
	if days > 0 {
		return fmt.Sprintf("%dd %02dh %02dm", days, h, m)
	}
	return fmt.Sprintf("%dh %02dm", h, m)
}
