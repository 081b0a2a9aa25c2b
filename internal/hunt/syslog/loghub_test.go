package syslog

import (
	"encoding/csv"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
)

// loghubRow is one row of a loghub *_structured.csv, reduced to what every
// file has.
type loghubRow struct {
	line                          int
	month, day, clock             string
	host, component, pid, content string
	eventID                       string
}

func readLoghubCSV(t *testing.T, path string, cols func(rec []string) loghubRow) []loghubRow {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cr := csv.NewReader(f)
	if _, err := cr.Read(); err != nil { // header
		t.Fatal(err)
	}
	var rows []loghubRow
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, cols(rec))
	}
	return rows
}

// want describes what a loghub template must produce.
type want struct {
	eventType string
	fields    []string // fields that must be present and non-empty
}

// OpenSSH_2k templates (OpenSSH_2k.log_templates.csv) and what we extract.
var opensshTemplates = map[string]want{
	"E1":  {EventSSHLoginSuccess, []string{FieldUser, FieldSourceIP, FieldSourcePort, FieldAuthMethod}},
	"E2":  {EventSSHConnClosed, []string{FieldSourceIP}},
	"E3":  {EventSSHNoIdent, []string{FieldSourceIP}},
	"E4":  {EventSSHTooManyFails, []string{FieldUser}},
	"E5":  {EventSSHTooManyFails, []string{FieldUser}},
	"E6":  {EventSSHDisconnect, []string{FieldSourceIP, FieldReason}},
	"E7":  {EventSSHDisconnect, []string{FieldSourceIP, FieldReason}},
	"E8":  {EventSSHLoginFailed, []string{FieldUser, FieldSourceIP, FieldSourcePort, FieldAuthMethod}},
	"E9":  {EventSSHLoginFailed, []string{FieldUser, FieldSourceIP, FieldSourcePort, FieldAuthMethod}},
	"E10": {EventSSHLoginFailed, []string{FieldUser, FieldSourceIP, FieldSourcePort, FieldAuthMethod}},
	"E11": {"", nil},
	"E12": {EventSSHInvalidUser, []string{FieldUser}},
	"E13": {EventSSHInvalidUser, []string{FieldUser, FieldSourceIP}},
	"E14": {EventSSHLoginFailed, []string{FieldUser, FieldSourceIP, FieldSourcePort, FieldCount}},
	"E15": {EventPamAuthFailure, []string{FieldCount, FieldUID, FieldTty}},
	"E16": {EventPamAuthFailure, []string{FieldCount, FieldUID, FieldTty}},
	"E17": {EventPamAuthFailure, []string{FieldCount, FieldUser}},
	"E18": {EventPamMaxRetries, nil},
	"E19": {EventPamAuthFailure, []string{FieldPamService, FieldUID}},
	"E20": {EventPamAuthFailure, []string{FieldPamService, FieldUser}},
	"E21": {EventPamUserUnknown, []string{FieldPamService}},
	"E22": {EventSSHSessionClose, []string{FieldUser}},
	"E23": {EventSSHSessionOpen, []string{FieldUser}},
	"E24": {EventSSHDisconnect, []string{FieldSourceIP}},
	"E25": {EventSSHDisconnect, []string{FieldSourceIP}},
	"E26": {EventSSHDisconnect, []string{FieldSourceIP}},
	"E27": {EventSSHBreakIn, []string{FieldSourceIP, FieldSourceHostname}},
}

// Linux_2k templates with an authentication meaning; every other template
// must produce no EventType except the ftpd and session ones listed.
var linuxTemplates = map[string]want{
	"E9":   {EventFTPLoginAnonymous, []string{FieldSourceIP, FieldUser}},
	"E15":  {EventPamAuthFailure, []string{FieldPamService, FieldUID, FieldTty}},
	"E16":  {EventPamAuthFailure, []string{FieldPamService, FieldUID, FieldTty}},
	"E17":  {EventPamAuthFailure, []string{FieldUser}},
	"E18":  {EventPamAuthFailure, []string{FieldUser}},
	"E19":  {EventPamAuthFailure, []string{FieldUser}},
	"E27":  {EventPamUserUnknown, []string{FieldPamService}},
	"E29":  {EventFTPConnection, []string{FieldSourceIP}},
	"E91":  {EventLoginRoot, []string{FieldUser, FieldTty}},
	"E101": {"*session_close", nil},
	"E102": {"*session_open", nil},
	"E103": {"*session_open", nil},
}

func TestLoghubOpenSSH(t *testing.T) {
	dir := corpusDir(t, "logs/loghub/OpenSSH")
	rows := readLoghubCSV(t, filepath.Join(dir, "OpenSSH_2k.log_structured.csv"), func(r []string) loghubRow {
		// LineId,Date,Day,Time,Component,Pid,Content,EventId,EventTemplate
		n, _ := strconv.Atoi(r[0])
		return loghubRow{line: n, month: r[1], day: r[2], clock: r[3], host: r[4], component: "sshd", pid: r[5], content: r[6], eventID: r[7]}
	})
	checkLoghub(t, filepath.Join(dir, "OpenSSH_2k.log"), rows, opensshTemplates, true)
}

func TestLoghubLinux(t *testing.T) {
	dir := corpusDir(t, "logs/loghub/Linux")
	rows := readLoghubCSV(t, filepath.Join(dir, "Linux_2k.log_structured.csv"), func(r []string) loghubRow {
		// LineId,Month,Date,Time,Level,Component,PID,Content,EventId,EventTemplate
		n, _ := strconv.Atoi(r[0])
		return loghubRow{line: n, month: r[1], day: r[2], clock: r[3], host: r[4], component: r[5], pid: r[6], content: r[7], eventID: r[8]}
	})
	checkLoghub(t, filepath.Join(dir, "Linux_2k.log"), rows, linuxTemplates, false)
}

func checkLoghub(t *testing.T, path string, rows []loghubRow, templates map[string]want, strict bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := NewReader(f, Options{Reference: time.Date(2005, 12, 31, 0, 0, 0, 0, time.UTC), Source: path})
	var ev event.Event
	i := 0
	types := map[string]int{}
	for ; ; i++ {
		err := r.Next(&ev)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i >= len(rows) {
			t.Fatalf("more events than CSV rows (%d)", len(rows))
		}
		row := rows[i]
		get := func(name string) string { v, _ := ev.Get(name); return v }
		if ev.Record != uint64(row.line) {
			t.Errorf("row %d: Record = %d", row.line, ev.Record)
		}
		if ev.Source != path || ev.Product != "linux" {
			t.Errorf("row %d: Source %q Product %q", row.line, ev.Source, ev.Product)
		}
		if got := ev.Time.Format("Jan"); got != row.month {
			t.Errorf("row %d: month %q, want %q", row.line, got, row.month)
		}
		if got := strconv.Itoa(ev.Time.Day()); got != row.day {
			t.Errorf("row %d: day %q, want %q", row.line, got, row.day)
		}
		if got := ev.Time.Format("15:04:05"); got != row.clock {
			t.Errorf("row %d: time %q, want %q", row.line, got, row.clock)
		}
		for _, c := range []struct{ name, want string }{
			{FieldHostname, row.host}, {FieldProgram, row.component}, {FieldPid, row.pid}, {FieldMessage, row.content},
		} {
			got := get(c.name)
			if c.name == FieldMessage {
				// Deliberate difference: loghub trims the indentation of
				// kernel lines ("  DMA zone: …"); we keep the message as
				// written after the tag and trim only trailing space.
				got = strings.TrimLeft(got, " ")
			}
			if got != c.want {
				t.Errorf("row %d: %s = %q, want %q", row.line, c.name, got, c.want)
			}
		}
		gotType := get(FieldEventType)
		types[gotType]++
		w, ok := templates[row.eventID]
		switch {
		case !ok && strict:
			t.Errorf("row %d: template %s has no expectation", row.line, row.eventID)
		case !ok && gotType != "":
			t.Errorf("row %d (%s): unexpected EventType %q for %q", row.line, row.eventID, gotType, row.content)
		case ok && w.eventType != "" && w.eventType[0] == '*':
			if len(gotType) < len(w.eventType)-1 || gotType[len(gotType)-len(w.eventType)+1:] != w.eventType[1:] {
				t.Errorf("row %d (%s): EventType %q, want suffix %q", row.line, row.eventID, gotType, w.eventType[1:])
			}
		case ok && gotType != w.eventType:
			t.Errorf("row %d (%s): EventType %q, want %q for %q", row.line, row.eventID, gotType, w.eventType, row.content)
		}
		for _, name := range w.fields {
			if get(name) == "" {
				t.Errorf("row %d (%s): field %s missing in %v", row.line, row.eventID, name, ev.Fields)
			}
		}
		if !ev.HasService("syslog") {
			t.Errorf("row %d: services %v", row.line, ev.Services)
		}
	}
	if i != len(rows) {
		t.Errorf("%d events, %d CSV rows", i, len(rows))
	}
	st := r.Stats()
	if st.Malformed != 0 || st.Truncated != 0 {
		t.Errorf("stats %+v", st)
	}
	t.Logf("%s: %d events, EventTypes %v", filepath.Base(path), i, types)
}
