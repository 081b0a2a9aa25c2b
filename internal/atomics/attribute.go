package atomics

import (
	"context"
	"sort"
	"strings"
	"time"
)

// Event is a stored event, as attribution needs it.
type Event struct {
	ID         int64
	Time       time.Time
	Categories []string
	Fields     [][2]string // name, value in stored order
}

// Get returns the first value of the field name (case-insensitive).
func (e *Event) Get(name string) string {
	for _, f := range e.Fields {
		if strings.EqualFold(f[0], name) {
			return f[1]
		}
	}
	return ""
}

// Alert is a stored alert, as attribution needs it.
type Alert struct {
	ID        int64
	RuleID    string
	RuleTitle string
	Level     string
	Tags      []string
	LastSeen  time.Time
	EventIDs  []int64
}

// Evidence gives attribution the stored events it needs.
type Evidence interface {
	// Event returns one stored event by id.
	Event(ctx context.Context, id int64) (Event, error)
	// Execs returns the host's process_creation events of process pid
	// stored with times in [from, to].
	Execs(ctx context.Context, pid string, from, to time.Time) ([]Event, error)
}

// Window is one test's run: when, and which shell.
type Window struct {
	From, To time.Time
	ShellPID int
	Session  string // the shell's audit session, "" when none was set
}

// Slack around a window: event times come from the kernel (exec) or the
// sensor (file events) and may trail the command's end a little.
const (
	slackBefore = time.Second
	slackAfter  = 3 * time.Second
)

// Detection is one rule that raised an alert attributable to a test.
type Detection struct {
	RuleID    string   `json:"rule_id"`
	RuleTitle string   `json:"rule_title"`
	Level     string   `json:"level"`
	Tags      []string `json:"tags,omitempty"`
	AlertID   int64    `json:"alert_id"`
	EventID   int64    `json:"event_id"`
	// Via: "session" (the event's audit session is the test shell's) or
	// "lineage" (its process descends from the shell by parent pids).
	Via string `json:"via"`
	// OnShell: the matching event is the exec of the test's own shell,
	// whose command line holds the whole test script; the rule saw the
	// script's text rather than a program it ran.
	OnShell bool `json:"on_shell,omitempty"`
}

// maxWalk bounds a parent-pid walk.
const maxWalk = 32

// Attribute returns, one per rule, the alerts whose triggering events lie
// in w and descend from its shell. alerts may hold any alerts; those not
// seen since w.From are ignored.
func Attribute(ctx context.Context, w Window, alerts []Alert, ev Evidence) ([]Detection, error) {
	from, to := w.From.Add(-slackBefore), w.To.Add(slackAfter)
	var out []Detection
	seen := map[string]bool{}
	for _, a := range alerts {
		if a.LastSeen.Before(from) || seen[a.RuleID] {
			continue
		}
		for _, id := range a.EventIDs {
			e, err := ev.Event(ctx, id)
			if err != nil {
				return nil, err
			}
			if e.Time.Before(from) || e.Time.After(to) {
				continue
			}
			via, err := descends(ctx, w, e, from, ev)
			if err != nil {
				return nil, err
			}
			if via == "" {
				continue
			}
			seen[a.RuleID] = true
			out = append(out, Detection{RuleID: a.RuleID, RuleTitle: a.RuleTitle, Level: a.Level, Tags: a.Tags,
				AlertID: a.ID, EventID: e.ID, Via: via, OnShell: isShellExec(w, e)})
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RuleID < out[j].RuleID })
	return out, nil
}

// descends tells how e's process descends from the window's shell, or "".
func descends(ctx context.Context, w Window, e Event, from time.Time, ev Evidence) (string, error) {
	if w.Session != "" && e.Get("SessionId") == w.Session {
		return "session", nil
	}
	pid := e.Get("ProcessId")
	if pid == "" {
		pid = e.Get("Pid") // syslog lines name the logging process
	}
	shell := itoa(w.ShellPID)
	at := e.Time
	visited := map[string]bool{}
	for range maxWalk {
		if pid == "" || pid == "0" || visited[pid] {
			return "", nil
		}
		if pid == shell {
			return "lineage", nil
		}
		visited[pid] = true
		execs, err := ev.Execs(ctx, pid, from, at)
		if err != nil {
			return "", err
		}
		// The process's most recent exec at or before the event.
		var p *Event
		for i := range execs {
			if !execs[i].Time.After(at) && (p == nil || execs[i].Time.After(p.Time)) {
				p = &execs[i]
			}
		}
		if p == nil {
			return "", nil
		}
		if w.Session != "" && p.Get("SessionId") == w.Session {
			return "session", nil
		}
		pid, at = p.Get("ParentProcessId"), p.Time
	}
	return "", nil
}

func isShellExec(w Window, e Event) bool {
	if e.Get("ProcessId") != itoa(w.ShellPID) {
		return false
	}
	img := e.Get("Image")
	return (strings.HasSuffix(img, "/sh") || strings.HasSuffix(img, "/bash") || strings.HasSuffix(img, "/dash")) &&
		strings.Contains(e.Get("CommandLine"), " -c ")
}

func itoa(n int) string {
	if n <= 0 {
		return ""
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
