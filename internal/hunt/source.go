// Package hunt runs the detection engine over log files offline: Windows EVTX,
// JSON and JSON lines (including SigmaHQ's rendering of Windows events),
// syslog and auth.log, and Linux audit logs. Files are read in parallel, one
// file per worker, each streamed with bounded memory.
//
// Only cmd/vigil imports hunt. It imports the readers below it
// (hunt/evtx, hunt/winevent, hunt/syslog, hunt/auditd) and detect.
//
// # Concurrency
//
// Run starts Options.Workers goroutines, each with its own reader, event and
// sigma.Matcher; detections go to one Sink call at a time (Run serialises
// them), so a Sink need not be safe for concurrent use. Correlation rules see
// the matches of all files after the single-event pass, sorted by time.
package hunt

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/hunt/auditd"
	"github.com/vigil-edr/vigil/internal/hunt/evtx"
	"github.com/vigil-edr/vigil/internal/hunt/syslog"
)

// Format is a log file format Vigil can hunt in.
type Format string

// Formats.
const (
	FormatEVTX   Format = "evtx"
	FormatJSON   Format = "json"
	FormatSyslog Format = "syslog"
	FormatAuditd Format = "auditd"
)

// reader is what every format's reader provides.
type reader interface {
	Next(ev *event.Event) error
}

// warner is implemented by readers that count problems they skipped.
type warner interface {
	warnings() (count int, first []string)
}

// File is one input file found by Walk.
type File struct {
	Path string
	Size int64
}

// Walk expands paths (files or directories, recursively) into the files to
// hunt, in lexical order. Hidden files and directories below a named
// directory are skipped; a named path that does not exist is an error.
func Walk(paths []string) ([]File, error) {
	var files []File
	for _, root := range paths {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if p != root && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() || !d.Type().IsRegular() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			files = append(files, File{Path: p, Size: info.Size()})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// Detect tells a file's format from its first bytes, falling back to its
// name. It returns "" for files that are none of the known formats (binary
// files, archives), which the hunt skips and counts.
func Detect(path string, head []byte) Format {
	if bytes.HasPrefix(head, []byte("ElfFile\x00")) {
		return FormatEVTX
	}
	trimmed := bytes.TrimLeft(head, " \t\r\n\ufeff")
	trimmed = bytes.TrimPrefix(trimmed, []byte("\xef\xbb\xbf"))
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		return FormatJSON
	}
	if bytes.HasPrefix(trimmed, []byte("type=")) || bytes.HasPrefix(trimmed, []byte("node=")) && bytes.Contains(firstLine(trimmed), []byte(" type=")) {
		return FormatAuditd
	}
	if bytes.IndexByte(head, 0) >= 0 {
		return "" // binary
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".evtx":
		return FormatEVTX
	case ".json", ".jsonl", ".ndjson":
		return FormatJSON
	}
	if len(trimmed) == 0 {
		return ""
	}
	// Text is hunted as syslog only when its first line reads as one; a
	// README or a licence next to the logs is skipped, not turned into events.
	var ev event.Event
	if err := syslog.Parse(firstLine(trimmed), syslog.Options{}, &ev); err != nil {
		return ""
	}
	return FormatSyslog
}

func firstLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i]
	}
	return b
}

// ErrUnknownFormat is returned by open for files in no known format.
var ErrUnknownFormat = errors.New("not a log format vigil reads")

// readers keeps one reader per format for a worker, so buffers and interned
// names survive from one file to the next.
type readers struct {
	evtx *evtx.Reader
}

// open opens one file and returns a reader for its format.
func (rs *readers) open(f File) (reader, io.Closer, Format, error) {
	fh, err := os.Open(f.Path)
	if err != nil {
		return nil, nil, "", err
	}
	head := make([]byte, 512)
	n, _ := io.ReadFull(fh, head)
	format := Detect(f.Path, head[:n])
	if _, err := fh.Seek(0, io.SeekStart); err != nil {
		fh.Close()
		return nil, nil, "", err
	}
	var r reader
	switch format {
	case FormatEVTX:
		opts := evtx.Options{Source: f.Path}
		if rs.evtx == nil {
			rs.evtx, err = evtx.NewReader(fh, f.Size, opts)
		} else {
			err = rs.evtx.Reset(fh, f.Size, opts)
		}
		if err != nil {
			rs.evtx = nil
			fh.Close()
			return nil, nil, format, err
		}
		r = &evtxReader{rs.evtx}
	case FormatJSON:
		r = newJSONReader(fh, f.Path)
	case FormatSyslog:
		opts := syslog.Options{Source: f.Path}
		if info, err := fh.Stat(); err == nil {
			opts.Reference = info.ModTime()
		}
		r = &syslogReader{syslog.NewReader(bufio.NewReaderSize(fh, 256<<10), opts)}
	case FormatAuditd:
		r = newAuditdReader(fh, f.Path)
	default:
		fh.Close()
		return nil, nil, "", ErrUnknownFormat
	}
	return r, fh, format, nil
}

type evtxReader struct{ *evtx.Reader }

func (r *evtxReader) warnings() (int, []string) {
	s := r.Stats()
	msgs := make([]string, len(s.Messages))
	for i, m := range s.Messages {
		msgs[i] = m.String()
	}
	return s.Warnings, msgs
}

type syslogReader struct{ *syslog.Reader }

func (r *syslogReader) warnings() (int, []string) {
	s := r.Stats()
	if s.Truncated == 0 {
		return 0, nil
	}
	return int(s.Truncated), []string{fmt.Sprintf("%d lines longer than the line limit were cut", s.Truncated)}
}

type auditdReader struct{ *auditd.Reader }

func newAuditdReader(r io.Reader, src string) reader {
	return &auditdReader{auditd.NewReader(bufio.NewReaderSize(r, 256<<10), auditd.Options{Source: src, Coalesce: true})}
}

func (r *auditdReader) warnings() (int, []string) {
	s := r.Stats()
	var msgs []string
	if s.Malformed > 0 {
		msgs = append(msgs, fmt.Sprintf("%d lines are not audit records", s.Malformed))
	}
	if s.Truncated > 0 {
		msgs = append(msgs, fmt.Sprintf("%d lines longer than the line limit were cut", s.Truncated))
	}
	return int(s.Malformed + s.Truncated), msgs
}
