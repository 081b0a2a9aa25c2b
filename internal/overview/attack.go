package overview

import (
	"cmp"
	"slices"
	"strings"
)

// Tactic is an ATT&CK Enterprise tactic.
type Tactic struct {
	ID   string // TA0002
	Name string // Execution
	Tag  string // execution, as in the Sigma tag attack.execution
}

// Tactics are the ATT&CK Enterprise tactics in kill-chain order.
var Tactics = []Tactic{
	{"TA0043", "Reconnaissance", "reconnaissance"},
	{"TA0042", "Resource Development", "resource_development"},
	{"TA0001", "Initial Access", "initial_access"},
	{"TA0002", "Execution", "execution"},
	{"TA0003", "Persistence", "persistence"},
	{"TA0004", "Privilege Escalation", "privilege_escalation"},
	{"TA0005", "Defense Evasion", "defense_evasion"},
	{"TA0006", "Credential Access", "credential_access"},
	{"TA0007", "Discovery", "discovery"},
	{"TA0008", "Lateral Movement", "lateral_movement"},
	{"TA0009", "Collection", "collection"},
	{"TA0011", "Command and Control", "command_and_control"},
	{"TA0010", "Exfiltration", "exfiltration"},
	{"TA0040", "Impact", "impact"},
}

// maxTagLen bounds what ParseTag looks at; real ATT&CK tags are under 40
// bytes.
const maxTagLen = 64

// ParseTag reads one Sigma tag. For attack.<tactic> (underscores or
// hyphens, any case) it returns the tactic's index in Tactics and "";
// for attack.tNNNN or attack.tNNNN.NNN it returns -1 and the technique id
// with its sub-technique cut off ("T1059"). Anything else (other
// namespaces, groups, software, malformed ids) is -1, "".
func ParseTag(tag string) (tactic int, technique string) {
	if len(tag) > maxTagLen || len(tag) < len("attack.x") || !strings.EqualFold(tag[:7], "attack.") {
		return -1, ""
	}
	rest := tag[7:]
	if t, ok := parseTechnique(rest); ok {
		return -1, t
	}
	for i, tc := range Tactics {
		if len(rest) == len(tc.Tag) && sameTactic(rest, tc.Tag) {
			return i, ""
		}
	}
	return -1, ""
}

// parseTechnique accepts tNNNN and tNNNN.NNN (digits ASCII, t any case).
func parseTechnique(s string) (string, bool) {
	if len(s) != 5 && len(s) != 9 || s[0] != 't' && s[0] != 'T' || !digits(s[1:5]) {
		return "", false
	}
	if len(s) == 9 && (s[5] != '.' || !digits(s[6:])) {
		return "", false
	}
	return "T" + s[1:5], true
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// sameTactic compares a tag's tactic part with a Tactic.Tag, ASCII
// case-insensitively and with '-' standing for '_'.
func sameTactic(s, tag string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c == '-' {
			c = '_'
		}
		if c != tag[i] {
			return false
		}
	}
	return true
}

// Matrix is the ATT&CK heat map: one column per tactic of Tactics, in that
// order, plus a last column (Tactic.ID "") for techniques of rules that name
// no tactic.
type Matrix struct {
	Columns []Column
	// Max is the largest cell count (0 when there are no cells), for
	// scaling the heat.
	Max int64
}

// Column is one tactic's alerts.
type Column struct {
	Tactic Tactic
	// Alerts counts the alerts of rules tagged with the tactic.
	Alerts int64
	// Cells are the techniques seen with the tactic, most alerts first
	// (ties by id).
	Cells []Cell
}

// Cell is the alerts of rules tagged with both a tactic and a technique.
type Cell struct {
	Technique string // T1059: sub-techniques count toward their technique
	Alerts    int64
}

// maxTagsPerRule bounds the tags read from one rule.
const maxTagsPerRule = 64

// BuildMatrix counts alerts per (tactic, technique) from the rules' tags.
// Sigma does not say which of a rule's techniques belongs to which of its
// tactics, so a rule with tactics A, B and techniques X, Y adds its alerts
// to all four cells (as the ATT&CK Navigator does with Sigma layers);
// sub-techniques of one technique count once.
func BuildMatrix(rules []RuleCount) Matrix {
	other := len(Tactics)
	cols := make([]map[string]int64, other+1)
	m := Matrix{Columns: make([]Column, other+1)}
	for i := range m.Columns {
		if i < other {
			m.Columns[i].Tactic = Tactics[i]
		} else {
			m.Columns[i].Tactic = Tactic{Name: "Other"}
		}
	}
	var tactics []int
	var techs []string
	for _, r := range rules {
		if r.Alerts <= 0 {
			continue
		}
		tactics, techs = tactics[:0], techs[:0]
		for _, tag := range r.Tags[:min(len(r.Tags), maxTagsPerRule)] {
			ta, te := ParseTag(tag)
			switch {
			case ta >= 0 && !slices.Contains(tactics, ta):
				tactics = append(tactics, ta)
			case te != "" && !slices.Contains(techs, te):
				techs = append(techs, te)
			}
		}
		if len(tactics) == 0 && len(techs) > 0 {
			tactics = append(tactics, other)
		}
		for _, ta := range tactics {
			m.Columns[ta].Alerts += r.Alerts
			if cols[ta] == nil && len(techs) > 0 {
				cols[ta] = map[string]int64{}
			}
			for _, te := range techs {
				cols[ta][te] += r.Alerts
			}
		}
	}
	for i, cells := range cols {
		for te, n := range cells {
			m.Columns[i].Cells = append(m.Columns[i].Cells, Cell{Technique: te, Alerts: n})
			m.Max = max(m.Max, n)
		}
		slices.SortFunc(m.Columns[i].Cells, func(a, b Cell) int {
			if c := cmp.Compare(b.Alerts, a.Alerts); c != 0 {
				return c
			}
			return strings.Compare(a.Technique, b.Technique)
		})
	}
	return m
}

// Heat grades n against top (the largest count) on a scale of 0 (none) and
// 1 to 5 (top), for styling a cell with a fixed class.
func Heat(n, top int64) int {
	if n <= 0 || top <= 0 {
		return 0
	}
	return int(min(max(n*5/top, 1), 5))
}
