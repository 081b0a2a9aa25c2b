package posture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Status is a check's (or the requirements') outcome.
type Status string

// Statuses. Every check ends as one of them, with a reason.
const (
	Passed        Status = "passed"
	Failed        Status = "failed"
	NotApplicable Status = "not_applicable"
)

// Outcome is one rule's result before a check's condition combines them.
type Outcome string

// Outcomes of a rule: its test held (found), did not hold (not_found), or
// could not be carried out (invalid: a missing file whose content was to be
// checked, a command that could not run, syntax RE2 or this agent does not
// support).
const (
	Found    Outcome = "found"
	NotFound Outcome = "not_found"
	Invalid  Outcome = "invalid"
)

// Limits applied while evaluating.
const (
	MaxFileBytes   = 16 << 20 // a file whose content is checked
	MaxLineBytes   = 1 << 20
	MaxDirEntries  = 50_000 // entries visited per directory rule
	MaxDirDepth    = 8
	MaxReasonBytes = 512
)

// Options configure an Evaluator. The zero value checks the host without
// running commands.
type Options struct {
	// Root is prepended to every path that f:, d: and p: rules read (p:
	// reads Root/proc); empty means "/". Commands always run on the host.
	Root string
	// Commands allows c: rules to run their commands. Off, they are not
	// applicable with that reason. See docs/sca.md, "Trust model".
	Commands bool
	// CommandTimeout bounds each command; zero means 30 s (Wazuh's default).
	CommandTimeout time.Duration
	// MaxOutput bounds the bytes kept of each command's stdout and stderr;
	// zero means 1 MiB.
	MaxOutput int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Evaluator runs policies.
type Evaluator struct {
	opts Options
}

// NewEvaluator returns an Evaluator with defaults filled in.
func NewEvaluator(opts Options) *Evaluator {
	if opts.Root == "" {
		opts.Root = "/"
	}
	if opts.CommandTimeout <= 0 {
		opts.CommandTimeout = 30 * time.Second
	}
	if opts.MaxOutput <= 0 {
		opts.MaxOutput = 1 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Evaluator{opts: opts}
}

// RuleResult is one evaluated rule.
type RuleResult struct {
	Rule    string  `json:"rule"`
	Outcome Outcome `json:"outcome"`
	Reason  string  `json:"reason"`
}

// Result is one check's outcome. Reason always says why.
type Result struct {
	CheckID int64        `json:"id"`
	Title   string       `json:"title"`
	Status  Status       `json:"status"`
	Reason  string       `json:"reason"`
	Rules   []RuleResult `json:"rules,omitempty"` // the rules evaluated, in order (evaluation stops once the condition is decided)
	Check   *Check       `json:"-"`
}

// Summary counts a report's results. Score is Wazuh's: passed × 100 /
// (passed + failed), rounded down; -1 when nothing passed or failed.
type Summary struct {
	Passed        int `json:"passed"`
	Failed        int `json:"failed"`
	NotApplicable int `json:"not_applicable"`
	Total         int `json:"total"`
	Score         int `json:"score"`
}

// Report is one policy's evaluation.
type Report struct {
	Policy   *Policy   `json:"-"`
	PolicyID string    `json:"policy_id"`
	Name     string    `json:"policy_name"`
	Source   string    `json:"source"`
	SHA256   string    `json:"sha256"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Applicable is false when the policy's requirements were not met;
	// every check is then not applicable with RequirementsReason.
	Applicable         bool     `json:"applicable"`
	RequirementsReason string   `json:"requirements_reason,omitempty"`
	Results            []Result `json:"results"`
	Summary            Summary  `json:"summary"`
}

// scan is the state of one Evaluate call: commands and the process list
// are each read once per scan.
type scan struct {
	e     *Evaluator
	ctx   context.Context
	cmds  map[string]*cmdOutput
	procs []procName
	perr  error
	pdone bool
	ids   *idNames
}

// Evaluate runs every check of p. It never fails: whatever cannot be
// evaluated is not applicable with the reason. ctx bounds the whole scan;
// once it ends, the remaining checks are not applicable ("scan cancelled").
func (e *Evaluator) Evaluate(ctx context.Context, p *Policy) *Report {
	rep := &Report{Policy: p, PolicyID: p.ID, Name: p.Name, Source: p.Source, SHA256: p.SHA256, Started: e.opts.Now().UTC(), Applicable: true}
	s := &scan{e: e, ctx: ctx, cmds: map[string]*cmdOutput{}}
	if p.Requirements != nil {
		req := Check{Title: p.Requirements.Title, Condition: p.Requirements.Condition, Rules: p.Requirements.Rules}
		r := s.check(p, &req)
		if r.Status != Passed {
			rep.Applicable = false
			rep.RequirementsReason = fmt.Sprintf("policy requirements (%s) not met: %s", clip(p.Requirements.Title, 100), r.Reason)
		}
	}
	for i := range p.Checks {
		c := &p.Checks[i]
		var r Result
		switch {
		case !rep.Applicable:
			r = Result{Status: NotApplicable, Reason: rep.RequirementsReason}
		case ctx.Err() != nil:
			r = Result{Status: NotApplicable, Reason: "scan cancelled before this check: " + ctx.Err().Error()}
		default:
			r = s.check(p, c)
		}
		r.CheckID, r.Title, r.Check = c.ID, c.Title, c
		r.Reason = clip(r.Reason, MaxReasonBytes)
		rep.Results = append(rep.Results, r)
	}
	rep.Summary = Summarize(rep.Results)
	rep.Finished = e.opts.Now().UTC()
	return rep
}

// Summarize counts results.
func Summarize(rs []Result) Summary {
	var s Summary
	for _, r := range rs {
		switch r.Status {
		case Passed:
			s.Passed++
		case Failed:
			s.Failed++
		default:
			s.NotApplicable++
		}
	}
	s.Total = len(rs)
	s.Score = -1
	if s.Passed+s.Failed > 0 {
		s.Score = s.Passed * 100 / (s.Passed + s.Failed)
	}
	return s
}

// check evaluates one check's rules under its condition, in order,
// stopping once the condition is decided (as Wazuh does, so a failed
// precondition spares the commands after it).
func (s *scan) check(p *Policy, c *Check) Result {
	cond := c.Condition
	switch cond {
	case "all", "any", "none":
	case "":
		return Result{Status: NotApplicable, Reason: "the check has no condition (want all, any or none)"}
	default:
		return Result{Status: NotApplicable, Reason: fmt.Sprintf("condition %q is not all, any or none", clip(cond, 20))}
	}
	if len(c.Rules) == 0 {
		return Result{Status: NotApplicable, Reason: "the check has no rules"}
	}
	regexType := p.RegexType
	if c.RegexType != "" {
		regexType = c.RegexType
	}
	var res Result
	firstInvalid := -1
	found, notFound := 0, 0
	for i, raw := range c.Rules {
		rr := s.rule(raw, p.Variables, regexType)
		rr.Reason = clip(rr.Reason, MaxReasonBytes)
		res.Rules = append(res.Rules, rr)
		n := fmt.Sprintf("rule %d (%s)", i+1, clip(raw, 160))
		switch rr.Outcome {
		case Found:
			found++
			switch cond {
			case "any":
				res.Status, res.Reason = Passed, n+" holds: "+rr.Reason
				return res
			case "none":
				res.Status, res.Reason = Failed, n+" holds, and none may: "+rr.Reason
				return res
			}
		case NotFound:
			notFound++
			if cond == "all" {
				res.Status, res.Reason = Failed, n+" does not hold: "+rr.Reason
				return res
			}
		default:
			if firstInvalid < 0 {
				firstInvalid = i
			}
		}
	}
	if firstInvalid >= 0 {
		rr := res.Rules[firstInvalid]
		res.Status = NotApplicable
		res.Reason = fmt.Sprintf("rule %d (%s) could not be evaluated: %s", firstInvalid+1, clip(rr.Rule, 160), rr.Reason)
		return res
	}
	switch cond {
	case "all":
		res.Status = Passed
		if len(c.Rules) == 1 {
			res.Reason = "the rule holds: " + res.Rules[0].Reason
		} else {
			res.Reason = fmt.Sprintf("all %d rules hold", len(c.Rules))
		}
	case "any":
		res.Status = Failed
		if len(c.Rules) == 1 {
			res.Reason = "the rule does not hold: " + res.Rules[0].Reason
		} else {
			res.Reason = fmt.Sprintf("none of the %d rules holds", len(c.Rules))
		}
	case "none":
		res.Status = Passed
		if len(c.Rules) == 1 {
			res.Reason = "the rule does not hold, as required: " + res.Rules[0].Reason
		} else {
			res.Reason = fmt.Sprintf("none of the %d rules holds, as required", len(c.Rules))
		}
	}
	return res
}

// rule evaluates one rule; a rule that cannot be parsed is Invalid.
func (s *scan) rule(raw string, vars map[string]string, regexType string) (rr RuleResult) {
	rr.Rule = raw
	defer func() {
		// A bug in a rule evaluator must cost one rule, never the scan.
		if v := recover(); v != nil {
			rr.Outcome, rr.Reason = Invalid, fmt.Sprintf("internal error evaluating the rule: %v", v)
		}
	}()
	r, err := parseRule(raw, vars, regexType)
	if err != nil {
		rr.Outcome, rr.Reason = Invalid, strings.TrimPrefix(err.Error(), errRule.Error()+": ")
		return rr
	}
	var out Outcome
	var why string
	switch r.kind {
	case 'f':
		out, why = s.fileRule(r)
	case 'd':
		out, why = s.dirRule(r)
	case 'p':
		out, why = s.procRule(r)
	case 'c':
		out, why = s.cmdRule(r)
	case 'r':
		out = Invalid
		if runtime.GOOS == "windows" {
			why = "registry rules are not supported by this agent yet"
		} else {
			why = "registry rules (r:) apply to Windows only"
		}
	}
	if r.negate && out != Invalid {
		if out == Found {
			out = NotFound
		} else {
			out = Found
		}
		why = "negated (not): " + why
	}
	rr.Outcome, rr.Reason = out, why
	return rr
}

// host maps a policy path to the path read under Root; with a Root, ".."
// cannot climb out of it (symbolic links inside the tree still can).
func (s *scan) host(p string) string {
	if s.e.opts.Root == "/" {
		return p
	}
	return filepath.Join(s.e.opts.Root, filepath.Clean("/"+p))
}

// paths expands the targets: globs (*, ?, [) are matched under Root.
func (s *scan) paths(targets []string) []string {
	var out []string
	for _, t := range targets {
		if strings.ContainsAny(t, "*?[") {
			m, _ := filepath.Glob(s.host(t))
			for _, h := range m {
				out = append(out, s.policyPath(h))
			}
			continue
		}
		out = append(out, t)
	}
	return out
}

func (s *scan) policyPath(h string) string {
	if s.e.opts.Root == "/" {
		return h
	}
	rel, err := filepath.Rel(s.e.opts.Root, h)
	if err != nil {
		return h
	}
	return "/" + rel
}

func list(ps []string) string {
	if len(ps) > 5 {
		return strings.Join(ps[:5], ", ") + fmt.Sprintf(" and %d more", len(ps)-5)
	}
	return strings.Join(ps, ", ")
}

// fileRule: `f:PATHS` holds when one of the paths is a regular file;
// `f:PATHS -> PATTERN` when one of them matches. Content of a list whose
// files all are missing is Invalid (nothing could be checked).
func (s *scan) fileRule(r *rule) (Outcome, string) {
	paths := s.paths(r.targets)
	if r.content == nil {
		for _, p := range paths {
			if fi, err := os.Stat(s.host(p)); err == nil && fi.Mode().IsRegular() {
				return Found, "file " + p + " exists"
			}
		}
		if len(paths) == 0 {
			return NotFound, "no file matches " + list(r.targets)
		}
		return NotFound, "no regular file at " + list(paths)
	}
	if len(paths) == 0 {
		return Invalid, "no file matches " + list(r.targets) + ", so no content could be checked"
	}
	checked := 0
	var lastWhy string
	for _, p := range paths {
		fi, err := os.Stat(s.host(p))
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		ok, why, err := s.fileMatches(p, fi, r.content)
		if err != nil {
			return Invalid, err.Error()
		}
		checked++
		if ok {
			return Found, why
		}
		lastWhy = why
	}
	if checked == 0 {
		return Invalid, "no regular file at " + list(paths) + " whose content could be checked"
	}
	if checked > 1 {
		return NotFound, fmt.Sprintf("none of %d files matches", checked)
	}
	return NotFound, lastWhy
}

// fileMatches tests one regular file against a pattern.
func (s *scan) fileMatches(p string, fi fs.FileInfo, e *expr) (bool, string, error) {
	statOK, statWhy := true, ""
	var lineTerms []term
	for _, t := range e.terms {
		if !t.stat() {
			lineTerms = append(lineTerms, t)
			continue
		}
		ok, why := s.statTerm(fi, t)
		if !ok {
			statOK, statWhy = false, why
			break
		}
		statWhy = why
	}
	if !statOK {
		return false, p + ": " + statWhy, nil
	}
	if len(lineTerms) == 0 {
		return true, p + ": " + statWhy, nil
	}
	data, err := readBounded(s.host(p), MaxFileBytes)
	if err != nil {
		return false, "", fmt.Errorf("%s: %v", p, err)
	}
	line, err := matchLines(data, lineTerms)
	if err != nil {
		return false, "", fmt.Errorf("%s: %v", p, err)
	}
	return describe(p, line, lineTerms)
}

// describe turns matchLines' answer into (holds, reason). Line contents
// are never quoted: they may be secrets.
func describe(what string, line int, terms []term) (bool, string, error) {
	single := len(terms) == 1 && terms[0].neg
	switch {
	case line > 0 && single:
		return true, what + ": no line matches the negated pattern", nil
	case line > 0:
		return true, fmt.Sprintf("%s: line %d matches", what, line), nil
	case line == 0:
		return false, what + " is empty", nil
	case single:
		return false, fmt.Sprintf("%s: line %d matches the negated pattern", what, -line), nil
	default:
		return false, what + ": no line matches", nil
	}
}

// matchLines applies Wazuh's line semantics to content: a pattern holds
// when one line satisfies every minterm (negated minterms must not match);
// a pattern of a single negated minterm holds when no line matches it.
// Empty content never holds. It returns the first matching line number
// (1-based), 0 for empty content, -N when the single negated minterm
// matched line N, or -1 when no line matched.
func matchLines(data []byte, terms []term) (int, error) {
	if len(bytes.TrimRight(data, "\n")) == 0 {
		return 0, nil
	}
	single := len(terms) == 1 && terms[0].neg
	n := 0
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		n++
		if len(line) > MaxLineBytes {
			return 0, fmt.Errorf("line %d is longer than %d bytes", n, MaxLineBytes)
		}
		l := string(bytes.TrimSuffix(line, []byte("\r")))
		if single {
			if termMatches(terms[0], l) {
				return -n, nil
			}
			continue
		}
		all := true
		for _, t := range terms {
			if termMatches(t, l) == t.neg {
				all = false
				break
			}
		}
		if all {
			return n, nil
		}
	}
	if single {
		return 1, nil
	}
	return -1, nil
}

// termMatches tests one line against a minterm, ignoring its negation.
func termMatches(t term, line string) bool {
	switch t.kind {
	case 'r':
		return t.re.MatchString(line)
	case 'n':
		m := t.re.FindStringSubmatch(line)
		if m == nil {
			return false
		}
		v := m[0]
		if len(m) > 1 {
			v = m[1]
		}
		got, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return false
		}
		switch t.op {
		case "<":
			return got < t.val
		case "<=":
			return got <= t.val
		case "==":
			return got == t.val
		case "!=":
			return got != t.val
		case ">=":
			return got >= t.val
		case ">":
			return got > t.val
		}
		return false
	default:
		return line == t.lit
	}
}

func readBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	return data, nil
}

// dirRule: `d:DIRS` holds when one is a directory; `d:DIRS -> FILE` when a
// file under one (recursively, bounded) has that name or matches r:REGEX;
// `d:DIRS -> FILE -> PATTERN` when one such file's content matches. A
// content or name test on directories that all are missing is Invalid.
func (s *scan) dirRule(r *rule) (Outcome, string) {
	paths := s.paths(r.targets)
	var dirs []string
	for _, p := range paths {
		if fi, err := os.Stat(s.host(p)); err == nil && fi.IsDir() {
			dirs = append(dirs, p)
		}
	}
	if r.file == nil {
		if len(dirs) > 0 {
			return Found, "directory " + dirs[0] + " exists"
		}
		return NotFound, "no directory at " + list(paths)
	}
	if len(dirs) == 0 {
		return Invalid, "no directory at " + list(paths) + " to look into"
	}
	named := 0
	for _, d := range dirs {
		var hit Outcome
		var why string
		visited := 0
		var walk func(dir string, depth int) error
		walk = func(dir string, depth int) error {
			ents, err := os.ReadDir(s.host(dir))
			if err != nil {
				return nil // unreadable subdirectories are skipped, as Wazuh does
			}
			for _, ent := range ents {
				visited++
				if visited > MaxDirEntries {
					return fmt.Errorf("more than %d entries under %s", MaxDirEntries, d)
				}
				p := filepath.Join(dir, ent.Name())
				fi, err := os.Stat(s.host(p))
				if err != nil {
					continue
				}
				if fi.IsDir() {
					if depth < MaxDirDepth {
						if err := walk(p, depth+1); err != nil || hit != "" {
							return err
						}
					}
					continue
				}
				if termMatches(*r.file, ent.Name()) == r.file.neg {
					continue
				}
				named++
				if r.content == nil {
					hit, why = Found, "file "+p+" matches the name test"
					return nil
				}
				if !fi.Mode().IsRegular() {
					continue
				}
				ok, w, err := s.fileMatches(p, fi, r.content)
				if err != nil {
					return err
				}
				if ok {
					hit, why = Found, w
					return nil
				}
			}
			return nil
		}
		if err := walk(d, 1); err != nil {
			return Invalid, err.Error()
		}
		if hit != "" {
			return hit, why
		}
	}
	if r.content == nil || named == 0 {
		return NotFound, "no file under " + list(dirs) + " matches the name test"
	}
	return NotFound, fmt.Sprintf("none of the %d files named under %s matches the content pattern", named, list(dirs))
}

// procRule: `p:NAME` holds when a process of that name runs (its comm, or
// the base name of its executable or of argv[0]).
func (s *scan) procRule(r *rule) (Outcome, string) {
	if !s.pdone {
		s.procs, s.perr = listProcs(s.host("/proc"))
		s.pdone = true
	}
	if s.perr != nil {
		return Invalid, "cannot list processes: " + s.perr.Error()
	}
	name := r.targets[0]
	for _, p := range s.procs {
		if p.comm == name || p.exe == name || p.argv0 == name {
			return Found, fmt.Sprintf("process %s runs (pid %d)", name, p.pid)
		}
	}
	return NotFound, fmt.Sprintf("no process named %s among %d", name, len(s.procs))
}

// cmdRule: `c:COMMAND -> PATTERN` holds when the command's stdout or its
// stderr matches (exit status ignored, as in Wazuh).
func (s *scan) cmdRule(r *rule) (Outcome, string) {
	if !s.e.opts.Commands {
		return Invalid, "commands are disabled for this policy (the agent runs a policy's commands only when its configuration allows them: sensors.sca_commands)"
	}
	cmd := r.targets[0]
	out, ok := s.cmds[cmd]
	if !ok {
		out = s.e.run(s.ctx, cmd)
		s.cmds[cmd] = out
	}
	if out.err != nil {
		return Invalid, out.err.Error()
	}
	lineTerms := r.content.terms
	name := "output of " + clip(cmd, 80)
	ok1, why1, err := matchOutput("stdout", out.stdout, lineTerms)
	if err != nil {
		return Invalid, name + ": " + err.Error()
	}
	if ok1 {
		return Found, name + " " + why1 + out.note()
	}
	ok2, why2, err := matchOutput("stderr", out.stderr, lineTerms)
	if err != nil {
		return Invalid, name + ": " + err.Error()
	}
	if ok2 {
		return Found, name + " " + why2 + out.note()
	}
	return NotFound, name + ": " + why1 + "; " + why2 + out.note()
}

func matchOutput(what string, data []byte, terms []term) (bool, string, error) {
	line, err := matchLines(data, terms)
	if err != nil {
		return false, "", err
	}
	return describe(what, line, terms)
}

var errNoStat = errors.New("no owner information on this system")

// statTerm tests the mode:, owner: and group: extensions against a file.
func (s *scan) statTerm(fi fs.FileInfo, t term) (bool, string) {
	var ok bool
	var why string
	switch t.kind {
	case 'm':
		perm := int64(fi.Mode().Perm())
		if fi.Mode()&fs.ModeSetuid != 0 {
			perm |= 0o4000
		}
		if fi.Mode()&fs.ModeSetgid != 0 {
			perm |= 0o2000
		}
		if fi.Mode()&fs.ModeSticky != 0 {
			perm |= 0o1000
		}
		ok = perm&^t.val == 0
		why = fmt.Sprintf("mode %04o, at most %04o allowed", perm, t.val)
	case 'o', 'g':
		uid, gid, err := fileOwner(fi)
		if err != nil {
			return t.neg, err.Error()
		}
		id, kind, names := uid, "owner", s.userNames
		if t.kind == 'g' {
			id, kind, names = gid, "group", s.groupNames
		}
		n := names(id)
		for _, w := range t.who {
			if w == strconv.FormatUint(uint64(id), 10) || (n != "" && w == n) {
				ok = true
			}
		}
		label := strconv.FormatUint(uint64(id), 10)
		if n != "" {
			label = n + " (" + label + ")"
		}
		why = fmt.Sprintf("%s %s, wanted %s", kind, label, strings.Join(t.who, " or "))
	}
	if t.neg {
		return !ok, "not " + why
	}
	return ok, why
}
