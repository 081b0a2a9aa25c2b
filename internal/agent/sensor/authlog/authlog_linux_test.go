package authlog

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
)

// want describes an expected event declaratively: its service and the field
// values it must carry (other fields are not checked).
type want struct {
	service string
	fields  map[string]string
}

func (w want) matches(ev *event.Event) bool {
	if ev.Product != "linux" || (w.service != "" && !ev.HasService(w.service)) {
		return false
	}
	for k, v := range w.fields {
		if got, ok := ev.Get(k); !ok || got != v {
			return false
		}
	}
	return true
}

func (w want) String() string { return fmt.Sprintf("%s event with %v", w.service, w.fields) }

// run starts a sensor and returns its events; the sensor stops (and must
// have returned) when the test ends.
func run(t *testing.T, s *Sensor) <-chan *event.Event {
	t.Helper()
	ch := make(chan *event.Event, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, func(ev *event.Event) { ch <- ev.Clone() }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return ch
}

// expect waits until each of wants has arrived, in order, within d;
// unmatched events in between are skipped.
func expect(t *testing.T, ch <-chan *event.Event, d time.Duration, wants ...want) {
	t.Helper()
	deadline := time.After(d)
	for _, w := range wants {
		for found := false; !found; {
			select {
			case ev := <-ch:
				found = w.matches(ev)
			case <-deadline:
				t.Fatalf("no %v within %v", w, d)
			}
		}
	}
}

func appendLine(t *testing.T, path, line string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// waitReady appends probe lines until the sensor reports one, so that the
// lines a test writes next are written after the sensor opened the file
// (it starts reading at the end).
func waitReady(t *testing.T, path string, ch <-chan *event.Event) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		appendLine(t, path, "Jan  1 00:00:00 host probe[1]: ready")
		select {
		case ev := <-ch:
			if p, _ := ev.Get("Program"); p == "probe" {
				return
			}
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatal("sensor did not start reading")
}

const (
	failedLine = "Nov 27 22:00:00 host01 sshd[1234]: Failed password for invalid user admin from 198.51.100.7 port 50022 ssh2"
	sudoLine   = "Nov 27 22:00:01 host01 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id"
)

var (
	wantFailed = want{"sshd", map[string]string{"EventType": "ssh_login_failed", "User": "admin", "SourceIp": "198.51.100.7", "SourcePort": "50022"}}
	wantSudo   = want{"sudo", map[string]string{"EventType": "sudo_command", "User": "alice", "TargetUser": "root", "Command": "/usr/bin/id"}}
)

func TestTailFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.log")
	appendLine(t, path, "Nov 27 21:00:00 host01 sshd[1]: Failed password for root from 192.0.2.1 port 1 ssh2") // before start: not reported
	s := New(Options{Path: path, PollInterval: 20 * time.Millisecond})
	ch := run(t, s)
	waitReady(t, path, ch)

	appendLine(t, path, failedLine)
	appendLine(t, path, sudoLine)
	expect(t, ch, 2*time.Second, wantFailed, wantSudo)

	st := s.Status()
	if st.Source != path || st.Err != nil || st.Events < 3 {
		t.Errorf("Status = %+v", st)
	}
	for len(ch) > 0 {
		if ev := <-ch; strings.Contains(fmt.Sprint(ev.Fields), "192.0.2.1") {
			t.Errorf("line written before start was reported: %v", ev.Fields)
		}
	}
}

func TestTailRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	appendLine(t, path, "")
	ch := run(t, New(Options{Path: path, PollInterval: 20 * time.Millisecond}))
	waitReady(t, path, ch)

	// logrotate's create mode: rename, late writes to the old file, new file.
	appendLine(t, path, failedLine)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendLine(t, path+".1", sudoLine)
	appendLine(t, path, strings.Replace(failedLine, "admin", "after-rotate", 1))
	expect(t, ch, 2*time.Second, wantFailed, wantSudo,
		want{"sshd", map[string]string{"EventType": "ssh_login_failed", "User": "after-rotate"}})

	// copytruncate mode: the file is cut to zero and written again.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond) // let the sensor see the smaller size before it grows
	appendLine(t, path, strings.Replace(failedLine, "admin", "after-truncate", 1))
	expect(t, ch, 2*time.Second, want{"sshd", map[string]string{"User": "after-truncate"}})
}

func TestTailLongLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.log")
	appendLine(t, path, "")
	ch := run(t, New(Options{Path: path, PollInterval: 20 * time.Millisecond}))
	waitReady(t, path, ch)
	appendLine(t, path, "Nov 27 22:00:00 host01 sshd[1]: "+strings.Repeat("x", 3*maxLine))
	appendLine(t, path, failedLine)
	expect(t, ch, 2*time.Second, wantFailed)
}

func TestJournalRecord(t *testing.T) {
	line := `{"__CURSOR":"s=1","__REALTIME_TIMESTAMP":"1764280800123456","_HOSTNAME":"host01","SYSLOG_IDENTIFIER":"sshd","SYSLOG_PID":"99","_PID":"100","SYSLOG_FACILITY":"10","PRIORITY":"6","MESSAGE":"Failed password for invalid user x from 203.0.113.9 port 4242 ssh2"}`
	var rec journalRecord
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		t.Fatal(err)
	}
	var ev event.Event
	if !rec.fill(&ev) {
		t.Fatal("fill = false")
	}
	w := want{"sshd", map[string]string{"EventType": "ssh_login_failed", "User": "x", "SourceIp": "203.0.113.9", "Hostname": "host01", "Pid": "99", "Facility": "authpriv"}}
	if !w.matches(&ev) {
		t.Errorf("got %v, want %v", ev.Fields, w)
	}
	if got := ev.Time.UnixMicro(); got != 1764280800123456 {
		t.Errorf("Time = %v", ev.Time)
	}

	// Non-UTF-8 message as a byte array; repeated field.
	line = `{"MESSAGE":[115,117,32,102,97,105,108],"SYSLOG_IDENTIFIER":["su","su2"]}`
	rec = journalRecord{}
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Message != "su fail" || rec.Identifier != "su" {
		t.Errorf("rec = %+v", rec)
	}
}

// TestJournal sends a line through logger(1) and expects it from the journal.
func TestJournal(t *testing.T) {
	if _, ok := journalAvailable(context.Background()); !ok {
		t.Skip("no systemd journal with entries on this machine (journalctl missing or empty): journal source not tested")
	}
	logger, err := exec.LookPath("logger")
	if err != nil {
		t.Skip("logger(1) not installed")
	}
	s := New(Options{})
	ch := run(t, s)
	deadline := time.Now().Add(5 * time.Second)
	for s.Status().Source != "journal" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // journalctl --since=now must be following before the line is sent
	user := fmt.Sprintf("x%d", time.Now().UnixNano()%100000)
	msg := "Failed password for invalid user " + user + " from 203.0.113.9 port 4242 ssh2"
	if out, err := exec.Command(logger, "-t", "sshd", "-p", "authpriv.info", msg).CombinedOutput(); err != nil {
		t.Fatalf("logger: %v: %s", err, out)
	}
	expect(t, ch, 5*time.Second, want{"sshd", map[string]string{"EventType": "ssh_login_failed", "User": user, "SourceIp": "203.0.113.9", "SourcePort": "4242"}})
}

// FuzzJournalRecord feeds arbitrary journalctl JSON through the record
// decoder and the syslog parser.
func FuzzJournalRecord(f *testing.F) {
	f.Add(`{"MESSAGE":"Failed password for root from 192.0.2.1 port 22 ssh2","SYSLOG_IDENTIFIER":"sshd","PRIORITY":"6","SYSLOG_FACILITY":"4"}`)
	f.Add(`{"MESSAGE":[255,0,10],"SYSLOG_IDENTIFIER":[[1],"x"],"_HOSTNAME":"a b[c]:"}`)
	f.Add(`{"MESSAGE":null,"__REALTIME_TIMESTAMP":"-1"}`)
	f.Fuzz(func(t *testing.T, line string) {
		var rec journalRecord
		if json.Unmarshal([]byte(line), &rec) != nil {
			return
		}
		var ev event.Event
		if rec.fill(&ev) && ev.Product != "linux" {
			t.Errorf("product %q", ev.Product)
		}
	})
}
