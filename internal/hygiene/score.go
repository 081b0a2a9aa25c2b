package hygiene

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/sca"
	"github.com/vigil-edr/vigil/internal/transport"
	"github.com/vigil-edr/vigil/internal/vuln"
)

// Category is one of the four parts of a score.
type Category string

// Categories, in the order deductions are listed.
const (
	CatConfig Category = "configuration"
	CatVulns  Category = "vulnerabilities"
	CatAlerts Category = "alerts"
	CatHealth Category = "health"
)

// Categories lists the categories in order.
var Categories = []Category{CatConfig, CatVulns, CatAlerts, CatHealth}

// Weights is the documented weighting (docs/hygiene.md), in tenths of a
// point so sums are exact. Each category's deductions are capped; the caps
// add up to 100, so a score never goes below 0.
var Weights = struct {
	Cap map[Category]int
	// Check is the cost of one failed configuration check by its severity.
	Check map[string]int
	// Vuln is the cost of one finding by level: [0] with a known fix,
	// [1] without (a fix you can apply today weighs more).
	Vuln map[vuln.Level][2]int
	// Alert is the cost of one open (new or acknowledged) alert by level.
	Alert map[string]int
	// Health costs.
	Silent, Late, NeverAssessed, NotEvaluated, NotMatched int
	// SilentAfter and LateAfter: an agent not heard from for longer.
	SilentAfter, LateAfter time.Duration
}{
	Cap:   map[Category]int{CatConfig: 350, CatVulns: 350, CatAlerts: 200, CatHealth: 100},
	Check: map[string]int{"critical": 80, "high": 50, "medium": 30, "low": 10},
	Vuln: map[vuln.Level][2]int{
		vuln.Critical: {50, 25}, vuln.High: {30, 15}, vuln.Medium: {10, 5},
		vuln.Low: {2, 1}, vuln.Negligible: {0, 0}, vuln.Unknown: {10, 5},
	},
	Alert:         map[string]int{"critical": 100, "high": 50, "medium": 20, "low": 10, "informational": 0},
	Silent:        100,
	Late:          40,
	NeverAssessed: 30,
	NotEvaluated:  30,
	NotMatched:    20,
	SilentAfter:   24 * time.Hour,
	LateAfter:     time.Hour,
}

// Check severities, worst first.
var checkSeverities = []string{"critical", "high", "medium", "low"}

// SeverityKey is the compliance key a policy may use to declare a check's
// severity (a Vigil extension of the Wazuh format): vigil_severity: [high].
const SeverityKey = "vigil_severity"

// cisSeverity is the severity derived from a check's CIS Controls v8
// safeguards, by control: data protection (3), account (5) and access
// control (6) management and continuous vulnerability management (7) are
// high; every other control is medium.
var cisSeverity = map[int]string{3: "high", 5: "high", 6: "high", 7: "high"}

// CheckSeverity returns a check's severity and where it comes from: the
// declared vigil_severity, else the worst derived from its cis_csc_v8
// safeguards, else medium.
func CheckSeverity(r *sca.Result) (severity, basis string) {
	if v := r.Compliance[SeverityKey]; len(v) > 0 {
		s := strings.ToLower(strings.TrimSpace(v[0]))
		for _, x := range checkSeverities {
			if s == x {
				return s, "declared by the policy"
			}
		}
	}
	best, from := "", ""
	for _, sg := range r.Compliance["cis_csc_v8"] {
		n, ok := cisControl(sg)
		if !ok {
			continue
		}
		s := cisSeverity[n]
		if s == "" {
			s = "medium"
		}
		if best == "" || rank(s) > rank(best) {
			best, from = s, "CIS Controls v8 safeguard "+clip(strings.TrimSpace(sg), 12)
		}
	}
	if best != "" {
		return best, from
	}
	return "medium", "no declared severity or CIS Controls v8 mapping"
}

// cisControl reads the control number of a safeguard ("5.4" → 5).
func cisControl(sg string) (int, bool) {
	head, _, _ := strings.Cut(strings.TrimSpace(sg), ".")
	n, err := strconv.Atoi(head)
	if err != nil || n < 1 || n > 18 {
		return 0, false
	}
	return n, true
}

func rank(sev string) int {
	for i, x := range checkSeverities {
		if x == sev {
			return len(checkSeverities) - i
		}
	}
	return 0
}

// Input is everything a host's score is computed from.
type Input struct {
	Agent transport.Agent   `json:"agent"`
	SCA   sca.Host          `json:"sca"`   // latest results (Policies empty: never assessed)
	Vulns vuln.HostFindings `json:"vulns"` // zero Evaluation: never evaluated
	// Alerts are the host's open alerts (new or acknowledged); others are
	// ignored.
	Alerts []alert.Alert `json:"alerts"`
}

// Deduction is points lost for one reason. Points is negative for what a
// category's cap gives back.
type Deduction struct {
	Category Category `json:"category"`
	Points   float64  `json:"points"`
	Count    int      `json:"count,omitempty"`
	Text     string   `json:"text"` // "−12: 3 critical vulnerabilities with fixes available"
}

// HostScore is one host's score.
type HostScore struct {
	AgentID  string `json:"agent_id"`
	Hostname string `json:"hostname"`
	Score    int    `json:"score"`
	// Monitored is false for a revoked agent: scored, but not counted in
	// the fleet's score.
	Monitored  bool                 `json:"monitored"`
	ByCategory map[Category]float64 `json:"by_category"` // points lost per category, after caps
	Deductions []Deduction          `json:"deductions"`
	exact      float64              // 100 − points lost, unrounded
}

// Compute scores one host at now.
func Compute(in *Input, now time.Time) HostScore {
	s := HostScore{AgentID: in.Agent.ID, Hostname: in.Agent.Hostname, Monitored: !in.Agent.Revoked,
		ByCategory: map[Category]float64{}, Deductions: []Deduction{}}
	var total int
	add := func(cat Category, ds []Deduction, tenths []int) {
		sum := 0
		for i, d := range ds {
			sum += tenths[i]
			d.Category = cat
			d.Points = float64(tenths[i]) / 10
			d.Text = minus(tenths[i]) + ": " + d.Text
			s.Deductions = append(s.Deductions, d)
		}
		if c := Weights.Cap[cat]; sum > c {
			s.Deductions = append(s.Deductions, Deduction{Category: cat, Points: -float64(sum-c) / 10,
				Text: fmt.Sprintf("+%s: %s deductions are capped at %s (%s before the cap)", pts(sum-c), cat, pts(c), pts(sum))})
			sum = c
		}
		s.ByCategory[cat] = float64(sum) / 10
		total += sum
	}

	// Configuration: failed checks by severity.
	{
		n := map[string]int{}
		for _, p := range in.SCA.Policies {
			for i := range p.Results {
				if p.Results[i].Status == sca.StatusFailed {
					sev, _ := CheckSeverity(&p.Results[i])
					n[sev]++
				}
			}
		}
		var ds []Deduction
		var ts []int
		for _, sev := range checkSeverities {
			if c := n[sev]; c > 0 {
				ds = append(ds, Deduction{Count: c, Text: fmt.Sprintf("%d failed %s-severity configuration %s", c, sev, plural(c, "check"))})
				ts = append(ts, c*Weights.Check[sev])
			}
		}
		add(CatConfig, ds, ts)
	}

	// Vulnerabilities: by level, with and without a fix.
	{
		type key struct {
			l   vuln.Level
			fix bool
		}
		n := map[key]int{}
		for i := range in.Vulns.Findings {
			f := &in.Vulns.Findings[i]
			l := f.Severity.Level
			if _, ok := Weights.Vuln[l]; !ok {
				l = vuln.Unknown
			}
			n[key{l, f.Fixable()}]++
		}
		var ds []Deduction
		var ts []int
		for _, l := range vuln.Levels {
			for _, fix := range []bool{true, false} {
				c := n[key{l, fix}]
				w := Weights.Vuln[l][1]
				what := "without a known fix"
				if fix {
					w, what = Weights.Vuln[l][0], "with "+plural(c, "a fix")+" available"
				}
				if c == 0 || w == 0 {
					continue
				}
				ds = append(ds, Deduction{Count: c, Text: fmt.Sprintf("%d %s %s %s", c, l, plural(c, "vulnerability"), what)})
				ts = append(ts, c*w)
			}
		}
		add(CatVulns, ds, ts)
	}

	// Open alerts by level.
	{
		n := map[string]int{}
		for i := range in.Alerts {
			a := &in.Alerts[i]
			if a.State == alert.StateNew || a.State == alert.StateAcknowledged {
				n[a.Level]++
			}
		}
		var ds []Deduction
		var ts []int
		for _, l := range []string{"critical", "high", "medium", "low"} {
			if c := n[l]; c > 0 {
				ds = append(ds, Deduction{Count: c, Text: fmt.Sprintf("%d open %s %s", c, l, plural(c, "alert"))})
				ts = append(ts, c*Weights.Alert[l])
			}
		}
		add(CatAlerts, ds, ts)
	}

	// Agent health and coverage.
	{
		var ds []Deduction
		var ts []int
		h := func(t int, format string, args ...any) {
			ds = append(ds, Deduction{Text: fmt.Sprintf(format, args...)})
			ts = append(ts, t)
		}
		switch since := now.Sub(in.Agent.LastSeen); {
		case in.Agent.Revoked:
			// Not monitored any more: its score stands as last known.
		case in.Agent.LastSeen.IsZero():
			h(Weights.Silent, "the agent has never reported")
		case since > Weights.SilentAfter:
			h(Weights.Silent, "the agent has been silent for %s", age(since))
		case since > Weights.LateAfter:
			h(Weights.Late, "the agent has been silent for %s", age(since))
		}
		if len(in.SCA.Policies) == 0 {
			h(Weights.NeverAssessed, "no configuration assessment has been reported")
		}
		switch {
		case in.Vulns.Evaluation.EvaluatedAt.IsZero():
			h(Weights.NotEvaluated, "no vulnerability evaluation (no package inventory or no database)")
		case in.Vulns.Evaluation.Note != "":
			h(Weights.NotMatched, "vulnerabilities cannot be matched: %s", clip(in.Vulns.Evaluation.Note, 120))
		}
		add(CatHealth, ds, ts)
	}

	s.exact = 100 - float64(total)/10
	s.Score = int(math.Round(s.exact))
	return s
}

// Fleet is the fleet's score: the mean of its monitored hosts' scores (-1
// when there are none), with the mean points lost per category as its
// deductions.
type Fleet struct {
	Score      int                  `json:"score"`
	Hosts      int                  `json:"hosts"`
	Monitored  int                  `json:"monitored"`
	ByCategory map[Category]float64 `json:"by_category"`
	Deductions []Deduction          `json:"deductions"`
}

// Summarise computes the fleet's score from its hosts' scores.
func Summarise(hosts []HostScore) Fleet {
	f := Fleet{Score: -1, Hosts: len(hosts), ByCategory: map[Category]float64{}, Deductions: []Deduction{}}
	sum := 0.0
	cat := map[Category]float64{}
	for _, h := range hosts {
		if !h.Monitored {
			continue
		}
		f.Monitored++
		sum += h.exact
		for c, p := range h.ByCategory {
			cat[c] += p
		}
	}
	if f.Monitored == 0 {
		return f
	}
	n := float64(f.Monitored)
	f.Score = int(math.Round(sum / n))
	for _, c := range Categories {
		mean := math.Round(cat[c]/n*10) / 10
		f.ByCategory[c] = mean
		if mean > 0 {
			f.Deductions = append(f.Deductions, Deduction{Category: c, Points: mean,
				Text: fmt.Sprintf("%s: %s (mean over %d %s)", minus(int(math.Round(mean*10))), c, f.Monitored, plural(f.Monitored, "host"))})
		}
	}
	return f
}

// Rank orders scores worst first: monitored before revoked, then lowest
// score, most vulnerability points, most configuration points, then by
// host name and agent id.
func Rank(hs []HostScore) {
	sort.SliceStable(hs, func(i, j int) bool {
		a, b := hs[i], hs[j]
		switch {
		case a.Monitored != b.Monitored:
			return a.Monitored
		case a.exact != b.exact:
			return a.exact < b.exact
		case a.ByCategory[CatVulns] != b.ByCategory[CatVulns]:
			return a.ByCategory[CatVulns] > b.ByCategory[CatVulns]
		case a.ByCategory[CatConfig] != b.ByCategory[CatConfig]:
			return a.ByCategory[CatConfig] > b.ByCategory[CatConfig]
		case a.Hostname != b.Hostname:
			return a.Hostname < b.Hostname
		}
		return a.AgentID < b.AgentID
	})
}

// pts formats tenths of a point: 120 → "12", 5 → "0.5".
func pts(tenths int) string {
	if tenths%10 == 0 {
		return strconv.Itoa(tenths / 10)
	}
	return strconv.FormatFloat(float64(tenths)/10, 'f', 1, 64)
}

func minus(tenths int) string { return "\u2212" + pts(tenths) }

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	switch word {
	case "vulnerability":
		return "vulnerabilities"
	case "a fix":
		return "fixes"
	}
	return word + "s"
}

func age(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", int(d/time.Hour))
	}
	return fmt.Sprintf("%d minutes", int(d/time.Minute))
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8Start(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }
