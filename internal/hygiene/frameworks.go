package hygiene

import (
	"fmt"
	"strings"

	"github.com/vigil-edr/vigil/internal/cases"
	"github.com/vigil-edr/vigil/internal/sca"
)

// Standing is how far the evidence in a report supports a mapping row.
type Standing string

// Standings.
const (
	Supported    Standing = "supported"     // evidence, and none against
	Gaps         Standing = "gaps"          // evidence of shortcomings
	NotEvidenced Standing = "not_evidenced" // nothing Vigil collects speaks to it
)

// MapRow is one requirement or principle with what the data says of it.
type MapRow struct {
	ID, Name string
	Standing Standing
	Evidence []string // what the report's data shows
	Missing  string   // what is not evidenced, plainly
}

// Mapping is one framework's rows.
type Mapping struct {
	Title, Note string
	Rows        []MapRow
}

// facts are the counts the mappings are derived from.
type facts struct {
	// checks per framework key and item: passed and failed counts.
	checks   map[string]map[string]*[2]int
	failed   int // failed checks (all)
	passed   int
	assessed int // hosts with a configuration assessment
	hosts    int

	vulns, fixable, critHigh int
	evaluated                int // hosts with a vulnerability evaluation

	openAlerts, openHigh int
	tactics              map[string]int // open alerts per ATT&CK tactic tag

	cases, openCases  int
	breach, nis2Cases int
	deadlines         map[cases.DeadlineState]int
	silent            int
}

func newFacts() *facts {
	return &facts{checks: map[string]map[string]*[2]int{}, tactics: map[string]int{}, deadlines: map[cases.DeadlineState]int{}}
}

// check counts one result under its compliance mappings.
func (f *facts) check(r *sca.Result) {
	var i int
	switch r.Status {
	case sca.StatusPassed:
		i = 0
		f.passed++
	case sca.StatusFailed:
		i = 1
		f.failed++
	default:
		return
	}
	for key, items := range r.Compliance {
		key = strings.ToLower(key)
		m := f.checks[key]
		if m == nil {
			m = map[string]*[2]int{}
			f.checks[key] = m
		}
		seen := map[string]bool{}
		for _, it := range items {
			it = normItem(key, it)
			if it == "" || seen[it] {
				continue
			}
			seen[it] = true
			c := m[it]
			if c == nil {
				c = &[2]int{}
				m[it] = c
			}
			c[i]++
		}
	}
}

// normItem reduces a compliance item to what the mappings group by: the
// CIS control number ("5.4" → "5"), the NIS2 Art. 21(2) letter
// ("21(2)(i)" → "i"), the GDPR Art. 32(1) point ("32(1)(b)" → "b").
func normItem(key, it string) string {
	it = strings.ToLower(strings.TrimSpace(it))
	switch key {
	case "cis_csc_v8":
		if n, ok := cisControl(it); ok {
			return fmt.Sprint(n)
		}
	case "nis2":
		if rest, ok := strings.CutPrefix(it, "21(2)("); ok && len(rest) >= 2 && rest[1] == ')' && rest[0] >= 'a' && rest[0] <= 'j' {
			return rest[:1]
		}
	case "gdpr":
		if rest, ok := strings.CutPrefix(it, "32(1)("); ok && len(rest) >= 2 && rest[1] == ')' && rest[0] >= 'a' && rest[0] <= 'd' {
			return rest[:1]
		}
		if strings.HasPrefix(it, "32") {
			return "32"
		}
	}
	return ""
}

func (f *facts) counts(key, item string) (passed, failed int) {
	if c := f.checks[key][item]; c != nil {
		return c[0], c[1]
	}
	return 0, 0
}

// checkRow fills a row from the checks mapped to key/item.
func (f *facts) checkRow(r *MapRow, key, item, label string) {
	p, fl := f.counts(key, item)
	if p+fl == 0 {
		return
	}
	r.Evidence = append(r.Evidence, fmt.Sprintf("%d configuration check results mapped to %s: %d passed, %d failed", p+fl, label, p, fl))
	r.Standing = worse(r.Standing, standingOf(fl))
}

func standingOf(failed int) Standing {
	if failed > 0 {
		return Gaps
	}
	return Supported
}

// worse combines standings: gaps beat supported beat not evidenced.
func worse(a, b Standing) Standing {
	order := map[Standing]int{NotEvidenced: 0, Supported: 1, Gaps: 2}
	if order[b] > order[a] {
		return b
	}
	return a
}

func finish(rows []MapRow) []MapRow {
	for i := range rows {
		if rows[i].Standing == "" {
			rows[i].Standing = NotEvidenced
		}
	}
	return rows
}

var cisNames = []string{"", "Inventory and control of enterprise assets", "Inventory and control of software assets",
	"Data protection", "Secure configuration of enterprise assets and software", "Account management",
	"Access control management", "Continuous vulnerability management", "Audit log management",
	"Email and web browser protections", "Malware defenses", "Data recovery", "Network infrastructure management",
	"Network monitoring and defense", "Security awareness and skills training", "Service provider management",
	"Application software security", "Incident response management", "Penetration testing"}

func (f *facts) vulnRow(r *MapRow) {
	if f.evaluated == 0 {
		return
	}
	r.Evidence = append(r.Evidence, fmt.Sprintf("vulnerability matching on %d of %d hosts: %d findings, %d critical or high, %d with a fix available",
		f.evaluated, f.hosts, f.vulns, f.critHigh, f.fixable))
	r.Standing = worse(r.Standing, standingOf(f.critHigh))
}

func (f *facts) incidentRow(r *MapRow) {
	r.Evidence = append(r.Evidence, fmt.Sprintf("%d open alerts (%d high or critical); %d cases, %d still open", f.openAlerts, f.openHigh, f.cases, f.openCases))
	r.Standing = worse(r.Standing, standingOf(f.openHigh))
}

func (f *facts) cis() Mapping {
	m := Mapping{Title: "CIS Controls v8",
		Note: "From the cis_csc_v8 mappings of the configuration checks, the vulnerability findings (control 7), the package inventory (control 2) and alert and case handling (control 17)."}
	for n := 1; n <= 18; n++ {
		r := MapRow{ID: fmt.Sprint(n), Name: cisNames[n]}
		f.checkRow(&r, "cis_csc_v8", fmt.Sprint(n), "this control")
		switch n {
		case 1:
			r.Evidence = append(r.Evidence, fmt.Sprintf("%d hosts enrolled with an agent", f.hosts))
			if r.Standing == "" {
				r.Standing = Supported
			}
			r.Missing = "Devices without an agent are not seen."
		case 2:
			if f.evaluated > 0 {
				r.Evidence = append(r.Evidence, fmt.Sprintf("package inventory matched on %d of %d hosts", f.evaluated, f.hosts))
				r.Standing = worse(r.Standing, Supported)
			}
			r.Missing = "Whether software is authorised is not evidenced."
		case 7:
			f.vulnRow(&r)
		case 17:
			f.incidentRow(&r)
			f.deadlineEvidence(&r)
		}
		if r.Standing == "" && r.Missing == "" {
			r.Missing = "No check, finding or alert in this report maps to it."
		}
		m.Rows = append(m.Rows, r)
	}
	m.Rows = finish(m.Rows)
	return m
}

func (f *facts) deadlineEvidence(r *MapRow) {
	var parts []string
	for _, st := range []cases.DeadlineState{cases.DeadlineMet, cases.DeadlineLate, cases.DeadlineDue, cases.DeadlineOverdue, cases.DeadlineWaiting} {
		if n := f.deadlines[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, strings.ReplaceAll(string(st), "_", " ")))
		}
	}
	if len(parts) > 0 {
		r.Evidence = append(r.Evidence, "regulatory notifications: "+strings.Join(parts, ", "))
		if f.deadlines[cases.DeadlineLate]+f.deadlines[cases.DeadlineOverdue] > 0 {
			r.Standing = Gaps
		} else {
			r.Standing = worse(r.Standing, Supported)
		}
	}
}

var nis2Letters = []struct{ id, name string }{
	{"a", "Risk analysis and information system security policies"},
	{"b", "Incident handling"},
	{"c", "Business continuity, backups and crisis management"},
	{"d", "Supply chain security"},
	{"e", "Security in acquisition, development and maintenance, including vulnerability handling"},
	{"f", "Assessing the effectiveness of the measures"},
	{"g", "Basic cyber hygiene practices and training"},
	{"h", "Cryptography and encryption"},
	{"i", "Human resources security, access control and asset management"},
	{"j", "Multi-factor authentication and secured communications"},
}

func (f *facts) nis2() Mapping {
	m := Mapping{Title: "NIS2 Directive, Art. 21 and Art. 23",
		Note: "Art. 21(2) letters from the nis2 mappings of the configuration checks; (b) and Art. 23 from alert and case handling; (e) from vulnerability findings; (f) from this assessment itself."}
	for _, l := range nis2Letters {
		r := MapRow{ID: "21(2)(" + l.id + ")", Name: l.name}
		f.checkRow(&r, "nis2", l.id, "this measure")
		switch l.id {
		case "b":
			f.incidentRow(&r)
		case "e":
			f.vulnRow(&r)
		case "f":
			if f.assessed > 0 {
				r.Evidence = append(r.Evidence, fmt.Sprintf("configuration assessed on %d of %d hosts (%d passed, %d failed)", f.assessed, f.hosts, f.passed, f.failed))
				r.Standing = worse(r.Standing, Supported)
			}
		case "c", "d":
			r.Missing = "Not evidenced by host telemetry: needs the organisation's own records."
		}
		if r.Standing == "" && r.Missing == "" {
			r.Missing = "No check in this report maps to it."
		}
		m.Rows = append(m.Rows, r)
	}
	r := MapRow{ID: "23", Name: "Reporting obligations (early warning 24 h, notification 72 h, final report in one month)"}
	r.Evidence = append(r.Evidence, fmt.Sprintf("%d cases marked as significant incidents", f.nis2Cases))
	f.deadlineEvidence(&r)
	if f.nis2Cases == 0 {
		r.Missing = "No case is marked as a significant incident, so no clock runs; whether any incident should have been is not evidenced."
	}
	m.Rows = append(m.Rows, r)
	m.Rows = finish(m.Rows)
	return m
}

var gdprPoints = []struct{ id, name string }{
	{"a", "Pseudonymisation and encryption of personal data"},
	{"b", "Ongoing confidentiality, integrity, availability and resilience"},
	{"c", "Restoring availability and access after an incident"},
	{"d", "Regularly testing and evaluating the measures"},
}

func (f *facts) gdpr() Mapping {
	m := Mapping{Title: "GDPR, Art. 32 and Art. 33",
		Note: "Art. 32(1) points from the gdpr mappings of the configuration checks; (d) also from this assessment; Art. 33 from cases marked as personal-data breaches and their 72 h clock."}
	for _, p := range gdprPoints {
		r := MapRow{ID: "32(1)(" + p.id + ")", Name: p.name}
		f.checkRow(&r, "gdpr", p.id, "this point")
		if p.id == "d" && f.assessed > 0 {
			r.Evidence = append(r.Evidence, fmt.Sprintf("configuration assessed on %d of %d hosts; vulnerabilities matched on %d", f.assessed, f.hosts, f.evaluated))
			r.Standing = worse(r.Standing, Supported)
		}
		if p.id == "c" {
			r.Missing = "Backups and restore tests are not evidenced by host telemetry."
		}
		if r.Standing == "" && r.Missing == "" {
			r.Missing = "No check in this report maps to it."
		}
		m.Rows = append(m.Rows, r)
	}
	r := MapRow{ID: "33", Name: "Notifying a personal-data breach to the supervisory authority within 72 h"}
	r.Evidence = append(r.Evidence, fmt.Sprintf("%d cases marked as personal-data breaches", f.breach))
	f.deadlineEvidence(&r)
	if f.breach == 0 {
		r.Missing = "No case is marked as a breach; whether personal data was affected is the controller's judgement, not evidenced here."
	}
	m.Rows = append(m.Rows, r)
	m.Rows = finish(m.Rows)
	return m
}

// paris maps the posture to the nine principles of the Paris Call for
// Trust and Security in Cyberspace (2018), named in our words.
func (f *facts) paris() Mapping {
	m := Mapping{Title: "Paris Call for Trust and Security in Cyberspace: the nine principles",
		Note: "The Paris Call addresses states and organisations; host telemetry speaks to some principles and not at all to others, which say so."}
	rows := []MapRow{
		{ID: "1", Name: "Protect individuals and infrastructure from malicious cyber activity"},
		{ID: "2", Name: "Protect the availability and integrity of the internet"},
		{ID: "3", Name: "Defend electoral processes against interference"},
		{ID: "4", Name: "Defend intellectual property against cyber-enabled theft"},
		{ID: "5", Name: "Keep malicious tools and practices from proliferating"},
		{ID: "6", Name: "Secure digital products and services across their lifecycle"},
		{ID: "7", Name: "Practise cyber hygiene"},
		{ID: "8", Name: "No private hack back: no offensive action by non-state actors"},
		{ID: "9", Name: "Promote international norms of responsible behaviour in cyberspace"},
	}
	// 1: detection and response on the organisation's hosts.
	f.incidentRow(&rows[0])
	// 2: network-facing configuration (CIS controls 12 and 13).
	for _, c := range []string{"12", "13"} {
		f.checkRow(&rows[1], "cis_csc_v8", c, "CIS Controls v8 control "+c)
	}
	if rows[1].Standing == "" {
		rows[1].Missing = "No network-facing check in this report."
	} else {
		rows[1].Missing = "Only the hosts' own network exposure is evidenced, not any contribution to the internet at large."
	}
	rows[2].Missing = "Not evidenced: outside what host telemetry can show."
	// 4: data protection checks and alerts of collection/exfiltration.
	f.checkRow(&rows[3], "cis_csc_v8", "3", "CIS Controls v8 control 3 (data protection)")
	if n := f.tactics["collection"] + f.tactics["exfiltration"] + f.tactics["credential_access"]; n > 0 || rows[3].Standing != "" {
		rows[3].Evidence = append(rows[3].Evidence, fmt.Sprintf("%d open alerts tagged collection, exfiltration or credential access", n))
		rows[3].Standing = worse(rows[3].Standing, standingOf(n))
	}
	rows[3].Missing = "Which data is intellectual property is not known to Vigil."
	rows[4].Missing = "Not evidenced: the organisation's own tooling policy; Vigil's response actions are signed, audited and act only on enrolled hosts."
	// 6: vulnerabilities and update checks (CIS control 7).
	f.vulnRow(&rows[5])
	f.checkRow(&rows[5], "cis_csc_v8", "7", "CIS Controls v8 control 7 (updates)")
	if rows[5].Standing == "" {
		rows[5].Missing = "No vulnerability evaluation or update check in this report."
	} else {
		rows[5].Missing = "Only installed packages are evidenced, not the organisation's own development."
	}
	// 7: the score itself.
	if f.assessed > 0 {
		rows[6].Evidence = append(rows[6].Evidence, fmt.Sprintf("configuration assessed on %d of %d hosts: %d checks passed, %d failed", f.assessed, f.hosts, f.passed, f.failed))
		rows[6].Standing = standingOf(f.failed)
	}
	if f.silent > 0 {
		rows[6].Evidence = append(rows[6].Evidence, fmt.Sprintf("%d hosts whose agent is silent", f.silent))
		rows[6].Standing = Gaps
	}
	if rows[6].Standing == "" {
		rows[6].Missing = "No configuration assessment reported."
	}
	rows[7].Missing = "Not evidenced by host data. Vigil itself has no offensive capability: its actions are limited to the organisation's own hosts."
	rows[8].Missing = "Not evidenced: a matter of policy and conduct, not of host telemetry."
	m.Rows = finish(rows)
	return m
}

// Label is the standing in words: "not evidenced".
func (s Standing) Label() string { return strings.ReplaceAll(string(s), "_", " ") }
