package atomics

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// events is Evidence over a fixed list, the way the server stores them.
type events []Event

func (es events) Event(_ context.Context, id int64) (Event, error) {
	for _, e := range es {
		if e.ID == id {
			return e, nil
		}
	}
	return Event{}, &APIError{Status: 404, Body: "no event " + strconv.FormatInt(id, 10)}
}

func (es events) Execs(_ context.Context, pid string, from, to time.Time) ([]Event, error) {
	var out []Event
	for _, e := range es {
		if e.Get("ProcessId") == pid && len(e.Categories) > 0 && e.Categories[0] == "process_creation" && !e.Time.Before(from) && !e.Time.After(to) {
			out = append(out, e)
		}
	}
	return out, nil
}

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func execEv(id int64, at time.Duration, pid, ppid int, ses, image, cmdline string) Event {
	return Event{ID: id, Time: t0.Add(at), Categories: []string{"process_creation"}, Fields: [][2]string{
		{"Image", image}, {"CommandLine", cmdline}, {"ProcessId", strconv.Itoa(pid)}, {"ParentProcessId", strconv.Itoa(ppid)}, {"SessionId", ses}}}
}

func fileEvent(id int64, at time.Duration, pid int) Event {
	return Event{ID: id, Time: t0.Add(at), Categories: []string{"file_event", "persistence"}, Fields: [][2]string{
		{"TargetFilename", "/etc/cron.d/x"}, {"ProcessId", strconv.Itoa(pid)}}}
}

func TestAttribute(t *testing.T) {
	ms := time.Millisecond
	store := events{
		execEv(1, 0, 100, 50, "7", "/usr/bin/sh", "/bin/sh -c cat /etc/shadow | head"), // the test shell
		execEv(2, 5*ms, 101, 100, "7", "/usr/bin/cat", "cat /etc/shadow"),              // its child, same session
		execEv(3, 6*ms, 102, 100, "", "/usr/bin/cat", "cat /etc/shadow"),               // child, session unknown: lineage
		execEv(4, 7*ms, 103, 102, "", "/usr/bin/id", "id"),                             // grandchild: lineage through 102
		execEv(5, 8*ms, 200, 1, "3", "/usr/bin/cat", "cat /etc/shadow"),                // unrelated process, same time
		execEv(6, 10*time.Second, 104, 100, "7", "/usr/bin/cat", "cat /etc/shadow"),    // same session, after the window
		execEv(7, 9*ms, 105, 999, "7", "/usr/bin/nohup", "nohup x"),                    // reparented but same session
		fileEvent(8, 9*ms, 100),                             // written by the shell itself
		fileEvent(9, 9*ms, 103),                             // written by the grandchild
		fileEvent(10, 9*ms, 300),                            // written by something else
		fileEvent(11, 9*ms, 0),                              // writer unknown
		execEv(12, 9*ms, 106, 400, "", "/usr/bin/id", "id"), // parent 400 never exec'd: unknown
	}
	w := Window{From: t0, To: t0.Add(100 * ms), ShellPID: 100, Session: "7"}
	alert := func(rule string, ids ...int64) Alert {
		return Alert{ID: int64(len(rule)), RuleID: rule, RuleTitle: "title " + rule, LastSeen: t0.Add(time.Second), EventIDs: ids}
	}
	cases := []struct {
		name    string
		w       Window
		alert   Alert
		via     string // "" = not attributed
		event   int64
		onShell bool
	}{
		{"the shell's own exec", w, alert("a", 1), "session", 1, true},
		{"child by session", w, alert("a", 2), "session", 2, false},
		{"child by parent pid", w, alert("a", 3), "lineage", 3, false},
		{"grandchild by parent pids", w, alert("a", 4), "lineage", 4, false},
		{"unrelated process", w, alert("a", 5), "", 0, false},
		{"after the window", w, alert("a", 6), "", 0, false},
		{"reparented child by session", w, alert("a", 7), "session", 7, false},
		{"file written by the shell", w, alert("a", 8), "lineage", 8, false},
		{"file written by a descendant", w, alert("a", 9), "lineage", 9, false},
		{"file written by another process", w, alert("a", 10), "", 0, false},
		{"file writer unknown", w, alert("a", 11), "", 0, false},
		{"parent without exec", w, alert("a", 12), "", 0, false},
		{"first attributable event wins", w, alert("a", 5, 10, 3, 2), "lineage", 3, false},
		{"no session: pid walk only", Window{From: t0, To: t0.Add(100 * ms), ShellPID: 100}, alert("a", 2), "lineage", 2, false},
		{"alert last seen before the window", w, Alert{RuleID: "a", LastSeen: t0.Add(-time.Hour), EventIDs: []int64{1}}, "", 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Attribute(context.Background(), c.w, []Alert{c.alert}, store)
			if err != nil {
				t.Fatal(err)
			}
			if c.via == "" {
				if len(got) != 0 {
					t.Fatalf("attributed %+v, want nothing", got)
				}
				return
			}
			if len(got) != 1 || got[0].Via != c.via || got[0].EventID != c.event || got[0].OnShell != c.onShell {
				t.Fatalf("got %+v, want via %s event %d onShell %v", got, c.via, c.event, c.onShell)
			}
		})
	}
	// One detection per rule, sorted by rule id; an unknown event id is an error.
	got, err := Attribute(context.Background(), w, []Alert{alert("b", 2), alert("a", 3), alert("b", 3)}, store)
	if err != nil || len(got) != 2 || got[0].RuleID != "a" || got[1].RuleID != "b" {
		t.Fatalf("got %+v, %v", got, err)
	}
	if _, err := Attribute(context.Background(), w, []Alert{alert("a", 99)}, store); err == nil {
		t.Fatal("an unknown event id must be an error")
	}
}

func TestSelect(t *testing.T) {
	tt := &Test{Technique: "T1053.003", Number: 2, GUID: "b7d42afa-9086-4c8a-b7b0-8ea3faa6ebb0"}
	for sel, want := range map[string]bool{
		"": true, "T1053.003": true, "t1053.003": true, "T1053": true, "T105": false, "T1053.003#2": true,
		"T1053.003 #2": true, "T1053.003#3": false, "B7D42AFA-9086-4c8a-b7b0-8ea3faa6ebb0": true, "T1059": false,
	} {
		var sels []string
		if sel != "" {
			sels = []string{sel}
		}
		if got := Select(tt, sels); got != want {
			t.Errorf("Select(%q) = %v, want %v", sel, got, want)
		}
	}
}
