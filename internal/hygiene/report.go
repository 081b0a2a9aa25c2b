package hygiene

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

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/cases"
	"github.com/vigil-edr/vigil/internal/sca"
	"github.com/vigil-edr/vigil/internal/vuln"
)

//go:embed report.css
var reportCSS string

//go:embed report.html.tmpl
var reportTmpl string

var reportTemplate = template.Must(template.New("report").Parse(reportTmpl))

// ReportCSP is the Content-Security-Policy a hygiene report is served
// with: nothing may load or run; only the report's own style block
// applies (allowed by its hash, not 'unsafe-inline'), and the charts are
// inline SVG styled by classes from that block; no page may frame it. The
// report carries the same policy in a meta element, less frame-ancestors
// (browsers ignore it there, and say so as an error), so a saved copy
// opened from disk is as locked down as one served by Vigil, which also
// sends it as an attachment.
var ReportCSP = metaCSP + "; frame-ancestors 'none'"

var metaCSP = "default-src 'none'; style-src 'sha256-" + cssHash() + "'; img-src 'none'; base-uri 'none'; form-action 'none'"

func cssHash() string {
	h := sha256.Sum256([]byte(reportCSS))
	return base64.StdEncoding.EncodeToString(h[:])
}

// Limits on a report's tables; what is left out is counted.
const (
	maxReportRows   = 500
	maxReportAlerts = 200
	maxReportCases  = 200
)

// reportData is what the template sees. Every string from an agent, a
// policy, an advisory, an alert or a case goes in as a plain string, so
// html/template escapes it for its context; only CSS is typed, and it is
// this package's constant.
type reportData struct {
	CSS         template.CSS
	CSP         string
	Fleet       bool
	Scope       string // "the fleet" or the host's name
	AgentID     string
	GeneratedAt string
	Zone        string
	Score       int
	HasScore    bool
	Monitored   int
	Deductions  []Deduction
	Trend       trend
	Hosts       []hostRow
	Bars        []bar
	Checks      []checkRow
	MoreChecks  int
	Vulns       []vulnGroup
	Alerts      []alertRow
	MoreAlerts  int
	Cases       []caseRow
	Mappings    []Mapping
}

type trend struct {
	Points    string // SVG polyline points
	Dots      []dot
	From, To  string
	Empty     bool
	Min, Max  int
	W, H, Pad int
}

type dot struct {
	X, Y  int
	Label string
}

type hostRow struct {
	Name, ID, LastSeen string
	Score              int
	Monitored          bool
	Top                []string
	Bar                int
}

type bar struct {
	Level           string
	Fixable, NoFix  int
	Y, WFix, WNoFix int
	XNoFix, XLabel  int
}

type checkRow struct {
	Policy, Title, Severity, Basis string
	CheckID                        int64
	Hosts                          []string
	Reason, Remediation, Rationale string
}

type vulnGroup struct {
	Level string
	Rows  []vulnRow
	More  int
}

type vulnRow struct {
	Advisory, Package, Installed, Fixed, Range, Why, Summary string
	Hosts                                                    []string
	Aliases                                                  []string
}

type alertRow struct {
	ID                        int64
	Level, Title, Host, State string
	Count                     int
	First, Last               string
}

type caseRow struct {
	ID                      int64
	Title, Severity, Status string
	Regimes                 []string
	Deadlines               []string
}

// WriteReport renders the hygiene report of one host (agentID) or of the
// fleet (agentID ""), with times in loc (nil: UTC), as one self-contained,
// printable HTML document.
func (s *Service) WriteReport(ctx context.Context, w io.Writer, agentID string, loc *time.Location) error {
	if loc == nil {
		loc = time.UTC
	}
	ft := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.In(loc).Format("2006-01-02 15:04 MST")
	}
	scores, inputs, now, err := s.scoreAll(ctx, 0)
	if err != nil {
		return err
	}
	d := &reportData{CSS: template.CSS(reportCSS), CSP: metaCSP, Fleet: agentID == "", Scope: "the fleet",
		GeneratedAt: ft(now), Zone: loc.String()}
	var scope []HostScore
	var history []Point
	if agentID == "" {
		f := Summarise(scores)
		d.Score, d.HasScore, d.Monitored, d.Deductions = f.Score, f.Monitored > 0, f.Monitored, f.Deductions
		scope = scores
	} else {
		i := slices.IndexFunc(scores, func(h HostScore) bool { return h.AgentID == agentID })
		if i < 0 {
			if _, err := s.opts.Hosts.GetAgent(ctx, agentID); err != nil {
				return err
			}
			return fmt.Errorf("hygiene: host %q is not listed", agentID)
		}
		h := scores[i]
		d.Scope, d.AgentID = h.Hostname, h.AgentID
		if d.Scope == "" {
			d.Scope = h.AgentID
		}
		d.Score, d.HasScore, d.Deductions = h.Score, true, h.Deductions
		scope = []HostScore{h}
	}
	if s.opts.Store != nil {
		if history, err = s.opts.Store.HygieneHistory(ctx, agentID, 200); err != nil {
			return err
		}
	}
	if d.HasScore {
		d.Trend = makeTrend(history, Point{At: now, Score: d.Score}, ft)
	} else {
		d.Trend = trend{Empty: true}
	}

	f := newFacts()
	f.hosts = len(scope)
	name := map[string]string{}
	for _, h := range scope {
		in := inputs[h.AgentID]
		name[h.AgentID] = h.Hostname
		row := hostRow{Name: h.Hostname, ID: h.AgentID, Score: h.Score, Monitored: h.Monitored, LastSeen: ft(in.Agent.LastSeen), Bar: h.Score * 2}
		for _, dd := range h.Deductions {
			if dd.Points > 0 && len(row.Top) < 3 {
				row.Top = append(row.Top, dd.Text)
			}
		}
		d.Hosts = append(d.Hosts, row)
		if len(in.SCA.Policies) > 0 {
			f.assessed++
		}
		if !in.Vulns.Evaluation.EvaluatedAt.IsZero() {
			f.evaluated++
		}
		if h.Monitored && (in.Agent.LastSeen.IsZero() || now.Sub(in.Agent.LastSeen) > Weights.SilentAfter) {
			f.silent++
		}
	}

	// Failed checks, grouped by policy and check across the scope.
	type ckey struct {
		policy string
		id     int64
	}
	checks := map[ckey]*checkRow{}
	for _, h := range scope {
		for _, p := range inputs[h.AgentID].SCA.Policies {
			for i := range p.Results {
				r := &p.Results[i]
				f.check(r)
				if r.Status != sca.StatusFailed {
					continue
				}
				k := ckey{p.PolicyID, r.CheckID}
				c := checks[k]
				if c == nil {
					sev, basis := CheckSeverity(r)
					c = &checkRow{Policy: p.PolicyID, CheckID: r.CheckID, Title: r.Title, Severity: sev, Basis: basis,
						Reason: r.Reason, Remediation: r.Remediation, Rationale: r.Rationale}
					checks[k] = c
				}
				c.Hosts = append(c.Hosts, h.Hostname)
			}
		}
	}
	for _, c := range checks {
		d.Checks = append(d.Checks, *c)
	}
	sort.Slice(d.Checks, func(i, j int) bool {
		a, b := d.Checks[i], d.Checks[j]
		if rank(a.Severity) != rank(b.Severity) {
			return rank(a.Severity) > rank(b.Severity)
		}
		if len(a.Hosts) != len(b.Hosts) {
			return len(a.Hosts) > len(b.Hosts)
		}
		if a.Policy != b.Policy {
			return a.Policy < b.Policy
		}
		return a.CheckID < b.CheckID
	})
	if len(d.Checks) > maxReportRows {
		d.MoreChecks = len(d.Checks) - maxReportRows
		d.Checks = d.Checks[:maxReportRows]
	}

	// Vulnerabilities by level, grouped by advisory, package and version.
	type vkey struct{ adv, pkg, inst string }
	groups := map[vuln.Level]map[vkey]*vulnRow{}
	fixable := map[vuln.Level][2]int{}
	for _, h := range scope {
		for _, fd := range inputs[h.AgentID].Vulns.Findings {
			l := fd.Severity.Level
			if _, ok := Weights.Vuln[l]; !ok {
				l = vuln.Unknown
			}
			f.vulns++
			c := fixable[l]
			if fd.Fixable() {
				f.fixable++
				c[0]++
			} else {
				c[1]++
			}
			fixable[l] = c
			if l == vuln.Critical || l == vuln.High {
				f.critHigh++
			}
			g := groups[l]
			if g == nil {
				g = map[vkey]*vulnRow{}
				groups[l] = g
			}
			k := vkey{fd.AdvisoryID, fd.Package, fd.Installed}
			r := g[k]
			if r == nil {
				r = &vulnRow{Advisory: fd.AdvisoryID, Package: fd.Package, Installed: fd.Installed, Fixed: fd.Fixed,
					Range: fd.Affected, Why: fd.Why, Summary: fd.Summary, Aliases: fd.Aliases}
				g[k] = r
			}
			r.Hosts = append(r.Hosts, h.Hostname)
		}
	}
	maxBar := 1
	for _, c := range fixable {
		maxBar = max(maxBar, c[0]+c[1])
	}
	for i, l := range vuln.Levels {
		c := fixable[l]
		b := bar{Level: string(l), Fixable: c[0], NoFix: c[1], Y: 8 + i*26, WFix: c[0] * 400 / maxBar, WNoFix: c[1] * 400 / maxBar}
		b.XNoFix = 110 + b.WFix
		b.XLabel = b.XNoFix + b.WNoFix + 6
		d.Bars = append(d.Bars, b)
		g := groups[l]
		if len(g) == 0 {
			continue
		}
		vg := vulnGroup{Level: string(l)}
		for _, r := range g {
			vg.Rows = append(vg.Rows, *r)
		}
		sort.Slice(vg.Rows, func(i, j int) bool {
			a, b := vg.Rows[i], vg.Rows[j]
			if (a.Fixed != "") != (b.Fixed != "") {
				return a.Fixed != ""
			}
			if len(a.Hosts) != len(b.Hosts) {
				return len(a.Hosts) > len(b.Hosts)
			}
			if a.Package != b.Package {
				return a.Package < b.Package
			}
			return a.Advisory < b.Advisory
		})
		if len(vg.Rows) > maxReportRows {
			vg.More = len(vg.Rows) - maxReportRows
			vg.Rows = vg.Rows[:maxReportRows]
		}
		d.Vulns = append(d.Vulns, vg)
	}

	// Open alerts of the scope.
	alertIDs := map[int64]bool{}
	for _, h := range scope {
		for _, a := range inputs[h.AgentID].Alerts {
			if a.State != alert.StateNew && a.State != alert.StateAcknowledged {
				continue
			}
			f.openAlerts++
			if a.Level == "high" || a.Level == "critical" {
				f.openHigh++
			}
			for _, t := range a.Tags {
				if rest, ok := strings.CutPrefix(strings.ToLower(t), "attack."); ok {
					f.tactics[strings.ReplaceAll(rest, "-", "_")]++
				}
			}
			alertIDs[a.ID] = true
			d.Alerts = append(d.Alerts, alertRow{ID: a.ID, Level: a.Level, Title: a.RuleTitle, Host: a.Host, State: string(a.State),
				Count: a.Count, First: ft(a.FirstSeen), Last: ft(a.LastSeen)})
		}
	}
	sort.Slice(d.Alerts, func(i, j int) bool {
		a, b := d.Alerts[i], d.Alerts[j]
		if ra, rb := alertRank(a.Level), alertRank(b.Level); ra != rb {
			return ra > rb
		}
		return a.ID > b.ID
	})
	if len(d.Alerts) > maxReportAlerts {
		d.MoreAlerts = len(d.Alerts) - maxReportAlerts
		d.Alerts = d.Alerts[:maxReportAlerts]
	}

	// Cases: all of them for the fleet; for a host, those holding one of
	// its alerts (any state).
	if s.opts.Cases != nil {
		cs, err := s.opts.Cases.ListCases(ctx, cases.Filter{Limit: maxReportCases})
		if err != nil {
			return fmt.Errorf("hygiene: cases: %w", err)
		}
		var hostAlerts map[int64]bool
		if agentID != "" {
			hostAlerts = map[int64]bool{}
			host := scope[0].Hostname
			list, err := s.opts.Alerts.ListAlerts(ctx, alert.Filter{Host: host, Limit: 1000})
			if err != nil {
				return err
			}
			for _, a := range list {
				if a.AgentID == "" || a.AgentID == agentID {
					hostAlerts[a.ID] = true
				}
			}
		}
		for i := range cs {
			c := &cs[i]
			if hostAlerts != nil && !slices.ContainsFunc(c.AlertIDs, func(id int64) bool { return hostAlerts[id] }) {
				continue
			}
			f.cases++
			if c.Status == cases.StatusOpen || c.Status == cases.StatusInProgress {
				f.openCases++
			}
			row := caseRow{ID: c.ID, Title: c.Title, Severity: string(c.Severity), Status: string(c.Status)}
			if c.Breach {
				f.breach++
				row.Regimes = append(row.Regimes, "GDPR Art. 33 personal-data breach")
			}
			if c.NIS2 {
				f.nis2Cases++
				row.Regimes = append(row.Regimes, "NIS2 Art. 23 significant incident")
			}
			for _, dl := range cases.Deadlines(c, now) {
				f.deadlines[dl.State]++
				row.Deadlines = append(row.Deadlines, dl.Title+": "+strings.ReplaceAll(string(dl.State), "_", " "))
			}
			d.Cases = append(d.Cases, row)
		}
	}
	d.Mappings = []Mapping{f.paris(), f.gdpr(), f.nis2(), f.cis()}
	return reportTemplate.Execute(w, d)
}

func alertRank(l string) int {
	return map[string]int{"critical": 4, "high": 3, "medium": 2, "low": 1}[l]
}

// makeTrend lays the history (newest first) and the current point out as
// an SVG polyline, oldest left.
func makeTrend(history []Point, cur Point, ft func(time.Time) string) trend {
	pts := make([]Point, 0, len(history)+1)
	for i := len(history) - 1; i >= 0; i-- {
		pts = append(pts, history[i])
	}
	if len(pts) == 0 || pts[len(pts)-1].Score != cur.Score || !pts[len(pts)-1].At.Equal(cur.At) {
		pts = append(pts, cur)
	}
	t := trend{W: 640, H: 160, Pad: 30, Min: 100, Max: 0}
	inner := t.W - 2*t.Pad
	var b strings.Builder
	for i, p := range pts {
		x := t.Pad
		if len(pts) > 1 {
			x += i * inner / (len(pts) - 1)
		}
		y := 10 + (100-p.Score)*(t.H-30)/100
		fmt.Fprintf(&b, "%d,%d ", x, y)
		t.Dots = append(t.Dots, dot{X: x, Y: y, Label: fmt.Sprintf("%s: %d", ft(p.At), p.Score)})
		t.Min, t.Max = min(t.Min, p.Score), max(t.Max, p.Score)
	}
	t.Points = strings.TrimSpace(b.String())
	t.From, t.To = ft(pts[0].At), ft(pts[len(pts)-1].At)
	return t
}
