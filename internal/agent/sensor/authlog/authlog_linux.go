package authlog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/hunt/syslog"
)

// maxLine bounds one log line or journal message; the rest of a longer one
// is dropped.
const maxLine = syslog.DefaultMaxLine

// maxJournalRecord bounds one JSON record from journalctl (a record carries
// many fields besides MESSAGE); a longer record is skipped.
const maxJournalRecord = 1 << 20

// Default file paths, tried in order when there is no journal.
var defaultPaths = []string{"/var/log/auth.log", "/var/log/secure"}

// Run follows the chosen source and calls out for every record until ctx
// ends, when it returns nil. It returns ErrNoSource when the host has no
// source.
func (s *Sensor) Run(ctx context.Context, out func(*event.Event)) error {
	if s.opts.Path != "" {
		s.setSource(s.opts.Path)
		return s.tail(ctx, s.opts.Path, out)
	}
	if journalctl, ok := journalAvailable(ctx); ok {
		s.setSource("journal")
		return s.journal(ctx, journalctl, out)
	}
	for _, p := range defaultPaths {
		if _, err := os.Stat(p); err == nil {
			s.setSource(p)
			return s.tail(ctx, p, out)
		}
	}
	s.setErr(ErrNoSource)
	return ErrNoSource
}

// journalAvailable reports whether journalctl exists and the journal holds
// at least one entry.
func journalAvailable(ctx context.Context) (string, bool) {
	path, err := exec.LookPath("journalctl")
	if err != nil {
		return "", false
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	b, err := exec.CommandContext(ctx, path, "-q", "--no-pager", "-n", "1", "-o", "json").Output()
	return path, err == nil && bytes.Contains(b, []byte("{"))
}

// ---- file tail ----

// tailer reads lines appended to one path, across rotation and truncation.
type tailer struct {
	path    string
	f       *os.File
	ino     uint64
	off     int64 // bytes of f consumed into lines or partial
	buf     []byte
	partial []byte // an unterminated line at the end of f
	skip    bool   // inside an overlong line: drop up to its newline
}

func (s *Sensor) tail(ctx context.Context, path string, out func(*event.Event)) error {
	t := &tailer{path: path, buf: make([]byte, 64<<10)}
	defer t.close()
	var ev event.Event
	var record uint64
	emit := func(line []byte) {
		opts := syslog.Options{Reference: time.Now(), Location: time.Local}
		if err := syslog.Parse(line, opts, &ev); errors.Is(err, syslog.ErrEmpty) {
			return
		}
		record++
		ev.Source, ev.Record = path, record
		s.counted()
		out(&ev)
	}
	// Start at the end: what is already there was written before the agent
	// ran (hunting reads it). A file that appears later is read from 0.
	if err := t.open(true); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.setErr(err)
	}
	tick := time.NewTicker(s.opts.PollInterval)
	defer tick.Stop()
	for {
		if t.f != nil {
			if err := t.drain(emit); err != nil {
				s.setErr(err)
			}
			if err := t.checkRotation(emit); err != nil {
				s.setErr(err)
			}
		} else if err := t.open(false); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.setErr(err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (t *tailer) open(atEnd bool) error {
	f, err := os.Open(t.path)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	t.f, t.ino, t.off = f, inode(st), 0
	t.partial, t.skip = t.partial[:0], false
	if atEnd {
		t.off, err = f.Seek(0, io.SeekEnd)
	}
	return err
}

func (t *tailer) close() {
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
}

// drain reads f to its current end, emitting complete lines.
func (t *tailer) drain(emit func([]byte)) error {
	for {
		n, err := t.f.Read(t.buf)
		t.off += int64(n)
		chunk := t.buf[:n]
		for len(chunk) > 0 {
			i := bytes.IndexByte(chunk, '\n')
			if i < 0 {
				t.add(chunk)
				break
			}
			t.add(chunk[:i])
			emit(t.partial)
			t.partial, t.skip = t.partial[:0], false
			chunk = chunk[i+1:]
		}
		if err == io.EOF || n == 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// add appends to the unterminated line, keeping at most maxLine bytes: an
// overlong line is emitted cut, its rest dropped.
func (t *tailer) add(b []byte) {
	if t.skip {
		return
	}
	if room := maxLine - len(t.partial); len(b) > room {
		t.partial = append(t.partial, b[:room]...)
		t.skip = true
		return
	}
	t.partial = append(t.partial, b...)
}

// checkRotation follows a rotated or truncated file.
func (t *tailer) checkRotation(emit func([]byte)) error {
	st, err := os.Stat(t.path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // rotated away, the new file is not there yet
		}
		return err
	}
	if ino := inode(st); ino != t.ino {
		// Lines written to the old file after our last read come first.
		if err := t.drain(emit); err != nil {
			return err
		}
		if len(t.partial) > 0 {
			emit(t.partial)
		}
		t.close()
		return t.open(false)
	}
	if st.Size() < t.off {
		if _, err := t.f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		t.off, t.partial, t.skip = 0, t.partial[:0], false
	}
	return nil
}

func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// ---- journal ----

func (s *Sensor) journal(ctx context.Context, journalctl string, out func(*event.Event)) error {
	var (
		cursor  string
		ev      event.Event
		record  uint64
		backoff = time.Second
	)
	for {
		started := time.Now()
		err := s.runJournalctl(ctx, journalctl, &cursor, func(r *journalRecord) {
			if !r.fill(&ev) {
				return
			}
			record++
			ev.Record = record
			s.counted()
			out(&ev)
		})
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = errors.New("journalctl exited")
		}
		s.setErr(err)
		if time.Since(started) > time.Minute {
			backoff = time.Second
		}
		s.opts.Logger.Warn("authlog: journalctl stopped, restarting", "err", err, "after", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// runJournalctl runs one journalctl child until it exits or ctx ends.
// cursor is where to continue from, and is updated as records arrive.
func (s *Sensor) runJournalctl(ctx context.Context, journalctl string, cursor *string, fn func(*journalRecord)) error {
	args := []string{"-f", "-q", "--no-pager", "-o", "json"}
	if *cursor != "" {
		args = append(args, "--after-cursor="+*cursor)
	} else {
		args = append(args, "--since=now")
	}
	// The auth and authpriv facilities: what rsyslog writes to auth.log.
	args = append(args, "SYSLOG_FACILITY=4", "SYSLOG_FACILITY=10")
	cmd := exec.CommandContext(ctx, journalctl, args...)
	cmd.WaitDelay = 2 * time.Second
	var stderr tailBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start journalctl: %w", err)
	}
	s.setSource("journal")
	br := bufio.NewReaderSize(stdout, 64<<10)
	var rec journalRecord
	var line []byte
	for {
		line, err = readRecord(br, line[:0])
		if len(line) > 0 {
			rec = journalRecord{}
			if json.Unmarshal(line, &rec) == nil {
				if rec.Cursor != "" {
					*cursor = rec.Cursor
				}
				fn(&rec)
			}
		}
		if err != nil {
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("journalctl: %w: %s", err, bytes.TrimSpace(stderr.b))
	}
	return nil
}

// readRecord appends the next line to dst, without its newline. A line
// longer than maxJournalRecord comes back empty.
func readRecord(br *bufio.Reader, dst []byte) ([]byte, error) {
	long := false
	for {
		b, err := br.ReadSlice('\n')
		if !long && len(dst)+len(b) <= maxJournalRecord {
			dst = append(dst, b...)
		} else {
			long, dst = true, dst[:0]
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimRight(dst, "\n"), err
	}
}

// tailBuffer keeps the last 1 KiB written to it (journalctl's stderr).
type tailBuffer struct{ b []byte }

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	if len(w.b) > 1024 {
		w.b = append(w.b[:0], w.b[len(w.b)-1024:]...)
	}
	return len(p), nil
}

// journalRecord holds the journal fields the sensor uses.
type journalRecord struct {
	Message    journalValue `json:"MESSAGE"`
	Identifier journalValue `json:"SYSLOG_IDENTIFIER"`
	Comm       journalValue `json:"_COMM"`
	SyslogPid  journalValue `json:"SYSLOG_PID"`
	Pid        journalValue `json:"_PID"`
	Hostname   journalValue `json:"_HOSTNAME"`
	Facility   journalValue `json:"SYSLOG_FACILITY"`
	Priority   journalValue `json:"PRIORITY"`
	Realtime   journalValue `json:"__REALTIME_TIMESTAMP"`
	Cursor     string       `json:"__CURSOR"`
}

// journalValue reads one journal field. journalctl writes a field as a
// string, as an array of byte values when it is not valid UTF-8, and as an
// array of those when the field occurs more than once (the first is kept).
type journalValue string

func (v *journalValue) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		*v = ""
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*v = journalValue(s)
	case b[0] == '[':
		var raw []json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			return err
		}
		if len(raw) == 0 || len(raw[0]) == 0 {
			*v = ""
			return nil
		}
		if c := raw[0][0]; c == '"' || c == '[' { // repeated field
			return v.UnmarshalJSON(raw[0])
		}
		bs := make([]byte, 0, len(raw))
		for _, r := range raw { // byte array
			n, err := strconv.ParseUint(string(r), 10, 8)
			if err != nil {
				return err
			}
			bs = append(bs, byte(n))
		}
		*v = journalValue(bs)
	default:
		*v = journalValue(b)
	}
	return nil
}

// fill turns the record into a syslog line, parses it into ev and sets the
// event time from the journal. It reports false for an empty message.
func (r *journalRecord) fill(ev *event.Event) bool {
	msg := string(r.Message)
	if msg == "" {
		return false
	}
	if len(msg) > maxLine {
		msg = msg[:maxLine]
	}
	fac, err := strconv.Atoi(string(r.Facility))
	if err != nil || fac < 0 || fac > 23 {
		fac = 4
	}
	sev, err := strconv.Atoi(string(r.Priority))
	if err != nil || sev < 0 || sev > 7 {
		sev = 6
	}
	ts := time.Now().UTC()
	if us, err := strconv.ParseInt(string(r.Realtime), 10, 64); err == nil {
		ts = time.UnixMicro(us).UTC()
	}
	ident := string(r.Identifier)
	if ident == "" {
		ident = string(r.Comm)
	}
	if ident == "" {
		ident = "unknown"
	}
	pid := string(r.SyslogPid)
	if pid == "" {
		pid = string(r.Pid)
	}
	host := string(r.Hostname)
	if host == "" {
		host = "-"
	}
	line := make([]byte, 0, 64+len(host)+len(ident)+len(pid)+len(msg))
	line = append(line, '<')
	line = strconv.AppendInt(line, int64(fac*8+sev), 10)
	line = append(line, '>')
	line = ts.AppendFormat(line, time.RFC3339Nano)
	line = append(line, ' ')
	line = append(line, host...)
	line = append(line, ' ')
	line = append(line, ident...)
	if pid != "" {
		line = append(line, '[')
		line = append(line, pid...)
		line = append(line, ']')
	}
	line = append(line, ": "...)
	line = append(line, msg...)
	if err := syslog.Parse(line, syslog.Options{Reference: ts}, ev); errors.Is(err, syslog.ErrEmpty) {
		return false
	}
	ev.Time = ts
	ev.Source = "journal"
	return true
}

func (s *Sensor) setSource(src string) {
	s.mu.Lock()
	s.status.Source = src
	s.status.Err = nil
	s.mu.Unlock()
}

func (s *Sensor) counted() {
	s.mu.Lock()
	s.status.Events++
	s.mu.Unlock()
}
