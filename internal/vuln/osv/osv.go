// Package osv reads OSV vulnerability records (the Open Source
// Vulnerability schema, https://ossf.github.io/osv-schema/): one JSON
// record, or a zip of them as the OSV project publishes per ecosystem.
//
// Only the affected packages of ecosystems internal/vuln matches (Debian,
// Ubuntu, AlmaLinux, Rocky Linux, Red Hat) are kept, with their
// ECOSYSTEM ranges turned into intervals; other ecosystems, GIT ranges,
// "limit" events and withdrawn records are skipped and counted. A record
// that breaks the schema, names an invalid version for its ecosystem or
// holds invalid UTF-8 rejects the whole file with a vuln.FileError naming
// the file, the zip member, the byte offset or the JSON path.
//
// Zips are read without extracting anything and without using member
// names as paths: only members ending in ".json" are read, each at most
// Options.MaxRecord bytes, all together at most Options.MaxTotal, and a
// member that inflates more than Options.MaxRatio times its compressed
// size is refused as a zip bomb.
//
// It imports internal/vuln and internal/vuln/version. Everything here is
// safe for concurrent use.
package osv

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/vuln"
	"github.com/vigil-edr/vigil/internal/vuln/version"
)

// Options bounds what is read; zero fields take the defaults.
type Options struct {
	MaxFile   int64 // bytes of the file (zip or JSON); default 1 GiB
	MaxRecord int64 // bytes of one record; default 16 MiB
	MaxTotal  int64 // bytes inflated from a zip; default 4 GiB
	MaxFiles  int   // zip members; default 1,000,000
	MaxRatio  int64 // inflated / compressed bytes of a member over 1 MiB; default 100
}

func (o Options) withDefaults() Options {
	if o.MaxFile <= 0 {
		o.MaxFile = 1 << 30
	}
	if o.MaxRecord <= 0 {
		o.MaxRecord = 16 << 20
	}
	if o.MaxTotal <= 0 {
		o.MaxTotal = 4 << 30
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = 1_000_000
	}
	if o.MaxRatio <= 0 {
		o.MaxRatio = 100
	}
	return o
}

// Result is what a file held.
type Result struct {
	Advisories []vuln.Advisory
	// Skipped counts what was left out, by reason.
	Skipped map[string]int
}

func (r *Result) skip(why string) {
	if r.Skipped == nil {
		r.Skipped = map[string]int{}
	}
	r.Skipped[why]++
}

// ErrLimit is wrapped by errors for input over a limit.
var ErrLimit = errors.New("over the limit")

// ReadFile reads path: a zip of records when it starts with a zip
// header, one JSON record otherwise. name is how errors name the file.
func ReadFile(path, name string, opts Options) (Result, error) {
	opts = opts.withDefaults()
	f, err := os.Open(path)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Result{}, err
	}
	if fi.Size() > opts.MaxFile {
		return Result{}, &vuln.FileError{File: name, Offset: -1, Err: fmt.Errorf("%w: %d bytes, more than %d", ErrLimit, fi.Size(), opts.MaxFile)}
	}
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err == nil && string(magic[:]) == "PK\x03\x04" {
		return ReadZip(f, fi.Size(), name, opts)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Result{}, err
	}
	data, err := io.ReadAll(io.LimitReader(f, opts.MaxRecord+1))
	if err != nil {
		return Result{}, err
	}
	if int64(len(data)) > opts.MaxRecord {
		return Result{}, &vuln.FileError{File: name, Offset: -1, Err: fmt.Errorf("%w: a record of more than %d bytes", ErrLimit, opts.MaxRecord)}
	}
	var res Result
	return res, res.add(name, "", data)
}

// ReadZip reads every ".json" member of a zip as one record.
func ReadZip(r io.ReaderAt, size int64, name string, opts Options) (Result, error) {
	opts = opts.withDefaults()
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return Result{}, &vuln.FileError{File: name, Offset: -1, Err: fmt.Errorf("not a readable zip: %w", err)}
	}
	if len(zr.File) > opts.MaxFiles {
		return Result{}, &vuln.FileError{File: name, Offset: -1, Err: fmt.Errorf("%w: %d members, more than %d", ErrLimit, len(zr.File), opts.MaxFiles)}
	}
	var res Result
	var total int64
	for _, zf := range zr.File {
		bad := func(err error) (Result, error) {
			return Result{}, &vuln.FileError{File: name, Member: zf.Name, Offset: -1, Err: err}
		}
		if zf.FileInfo().IsDir() {
			continue
		}
		if !strings.HasSuffix(strings.ToLower(zf.Name), ".json") {
			res.skip("zip member not .json")
			continue
		}
		switch {
		case zf.Flags&1 != 0:
			return bad(errors.New("encrypted"))
		case zf.UncompressedSize64 > uint64(opts.MaxRecord):
			return bad(fmt.Errorf("%w: declares %d bytes, more than %d", ErrLimit, zf.UncompressedSize64, opts.MaxRecord))
		case zf.UncompressedSize64 > 1<<20 && zf.UncompressedSize64 > uint64(opts.MaxRatio)*zf.CompressedSize64:
			return bad(fmt.Errorf("%w: inflates %d bytes to %d (a zip bomb?)", ErrLimit, zf.CompressedSize64, zf.UncompressedSize64))
		}
		rc, err := zf.Open()
		if err != nil {
			return bad(err)
		}
		// archive/zip refuses to inflate past the declared size and checks
		// the CRC at the end; the limit is a second fence.
		data, err := io.ReadAll(io.LimitReader(rc, opts.MaxRecord+1))
		rc.Close()
		if err != nil {
			return bad(err)
		}
		if int64(len(data)) > opts.MaxRecord {
			return bad(fmt.Errorf("%w: more than %d bytes", ErrLimit, opts.MaxRecord))
		}
		if total += int64(len(data)); total > opts.MaxTotal {
			return bad(fmt.Errorf("%w: the members inflate to more than %d bytes", ErrLimit, opts.MaxTotal))
		}
		if err := res.add(name, zf.Name, data); err != nil {
			return Result{}, err
		}
	}
	return res, nil
}

// The record, as far as it is read.
type (
	record struct {
		SchemaVersion string          `json:"schema_version"`
		ID            string          `json:"id"`
		Modified      string          `json:"modified"`
		Withdrawn     string          `json:"withdrawn"`
		Aliases       []string        `json:"aliases"`
		Upstream      []string        `json:"upstream"`
		Summary       string          `json:"summary"`
		Details       string          `json:"details"`
		Severity      []severity      `json:"severity"`
		Affected      []affected      `json:"affected"`
		DatabaseSpec  json.RawMessage `json:"database_specific"`
	}
	severity struct {
		Type  string `json:"type"`
		Score string `json:"score"`
	}
	affected struct {
		Package struct {
			Ecosystem string `json:"ecosystem"`
			Name      string `json:"name"`
		} `json:"package"`
		Severity []severity `json:"severity"`
		Ranges   []struct {
			Type   string              `json:"type"`
			Events []map[string]string `json:"events"`
		} `json:"ranges"`
		Versions []string `json:"versions"`
	}
)

// add parses one record and appends its advisory, or counts why it is
// skipped.
func (res *Result) add(file, member string, data []byte) error {
	bad := func(path string, format string, args ...any) error {
		return &vuln.FileError{File: file, Member: member, Offset: -1, Path: path, Err: fmt.Errorf(format, args...)}
	}
	if off := vuln.InvalidUTF8(data); off >= 0 {
		return &vuln.FileError{File: file, Member: member, Offset: off, Err: errors.New("invalid UTF-8")}
	}
	var rec record
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&rec); err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("empty")
		}
		fe := vuln.JSONError(file, member, 0, err)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			fe.Offset = int64(len(data))
		}
		return fe
	}
	if _, err := dec.Token(); err != io.EOF {
		return &vuln.FileError{File: file, Member: member, Offset: dec.InputOffset(), Err: errors.New("data after the record")}
	}
	if !vuln.Name(rec.ID) {
		return bad("$.id", "missing or not a usable id: %.60q", rec.ID)
	}
	if rec.Withdrawn != "" {
		res.skip("withdrawn")
		return nil
	}
	adv := vuln.Advisory{Source: vuln.SourceOSV, ID: rec.ID}
	if rec.Modified != "" {
		t, err := time.Parse(time.RFC3339Nano, rec.Modified)
		if err != nil {
			return bad("$.modified", "not an RFC 3339 time: %.40q", rec.Modified)
		}
		adv.Modified = t.UTC()
	}
	for i, a := range append(slices.Clip(rec.Aliases), rec.Upstream...) {
		if !vuln.Name(a) {
			return bad(fmt.Sprintf("$.aliases[%d]", i), "not a usable id: %.60q", a)
		}
		if a != rec.ID && !slices.Contains(adv.Aliases, a) {
			adv.Aliases = append(adv.Aliases, a)
		}
	}
	adv.Summary = rec.Summary
	if adv.Summary == "" {
		adv.Summary, _, _ = strings.Cut(strings.TrimSpace(rec.Details), "\n")
	}
	adv.Summary = vuln.CleanText(adv.Summary, vuln.MaxSummary)
	var dbSpec struct {
		Severity any `json:"severity"`
	}
	if len(rec.DatabaseSpec) > 0 {
		_ = json.Unmarshal(rec.DatabaseSpec, &dbSpec) // free-form: only a severity word is used
	}
	word, _ := dbSpec.Severity.(string)
	sev, err := pickSeverity(rec.Severity, word)
	if err != nil {
		return bad("$.severity", "%v", err)
	}
	adv.Severity = sev
	for i, a := range rec.Affected {
		at := fmt.Sprintf("$.affected[%d]", i)
		eco, ok := vuln.OSVEcosystem(a.Package.Ecosystem)
		if !ok {
			res.skip("ecosystem " + vuln.CleanText(a.Package.Ecosystem, 40))
			continue
		}
		if !vuln.Name(a.Package.Name) {
			return bad(at+".package.name", "missing or not a usable name: %.60q", a.Package.Name)
		}
		out := vuln.Affected{Ecosystem: eco.Name, Package: a.Package.Name}
		if len(a.Severity) > 0 {
			s, err := pickSeverity(a.Severity, "")
			if err != nil {
				return bad(at+".severity", "%v", err)
			}
			out.Severity = &s
		}
		for j, r := range a.Ranges {
			rt := fmt.Sprintf("%s.ranges[%d]", at, j)
			if r.Type != "ECOSYSTEM" {
				if r.Type != "GIT" && r.Type != "SEMVER" {
					return bad(rt+".type", "unknown range type %.40q", r.Type)
				}
				res.skip(r.Type + " range")
				continue
			}
			rs, err := intervals(r.Events, eco.Scheme)
			if err != nil {
				return bad(rt+err.path, "%v", err.err)
			}
			out.Ranges = append(out.Ranges, rs...)
		}
		for j, v := range a.Versions {
			if err := eco.Scheme.Valid(v); err != nil {
				return bad(fmt.Sprintf("%s.versions[%d]", at, j), "%v", err)
			}
			out.Versions = append(out.Versions, v)
		}
		if len(out.Ranges) == 0 && len(out.Versions) == 0 {
			res.skip("affected without ecosystem ranges or versions")
			continue
		}
		adv.Affected = append(adv.Affected, out)
	}
	if len(adv.Affected) == 0 {
		res.skip("no matched ecosystem")
		return nil
	}
	res.Advisories = append(res.Advisories, adv)
	return nil
}

type pathErr struct {
	path string
	err  error
}

// intervals turns one ECOSYSTEM range's events into intervals, as OSV
// evaluates them: events sorted by version ("0" first), an introduced
// opens an interval, the next fixed or last_affected closes it; an
// interval left open has no fix. A "limit" only bounds the search in
// GIT ranges and is ignored.
func intervals(events []map[string]string, s version.Scheme) ([]vuln.Range, *pathErr) {
	type ev struct{ kind, v string }
	var evs []ev
	for i, e := range events {
		if len(e) != 1 {
			return nil, &pathErr{fmt.Sprintf(".events[%d]", i), fmt.Errorf("an event needs exactly one of introduced, fixed, last_affected, limit; has %d", len(e))}
		}
		for k, v := range e {
			switch k {
			case "introduced", "fixed", "last_affected", "limit":
			default:
				return nil, &pathErr{fmt.Sprintf(".events[%d]", i), fmt.Errorf("unknown event %.40q", k)}
			}
			if !(k == "introduced" && v == "0") && k != "limit" {
				if err := s.Valid(v); err != nil {
					return nil, &pathErr{fmt.Sprintf(".events[%d].%s", i, k), err}
				}
			}
			if k != "limit" {
				evs = append(evs, ev{k, v})
			}
		}
	}
	slices.SortStableFunc(evs, func(a, b ev) int {
		switch {
		case a.v == "0" && a.kind == "introduced" && b.v == "0" && b.kind == "introduced":
			return 0
		case a.v == "0" && a.kind == "introduced":
			return -1
		case b.v == "0" && b.kind == "introduced":
			return 1
		}
		return s.Compare(a.v, b.v)
	})
	var out []vuln.Range
	var cur *vuln.Range
	for _, e := range evs {
		switch e.kind {
		case "introduced":
			if cur == nil {
				cur = &vuln.Range{Introduced: e.v}
				if e.v == "0" {
					cur.Introduced = ""
				}
			}
		case "fixed", "last_affected":
			if cur == nil {
				continue // closes nothing
			}
			if e.kind == "fixed" {
				cur.Fixed = e.v
			} else {
				cur.LastAffected = e.v
			}
			out = append(out, *cur)
			cur = nil
		}
	}
	if cur != nil {
		out = append(out, *cur)
	}
	if len(evs) > 0 && len(out) == 0 {
		return nil, &pathErr{".events", errors.New("no introduced event")}
	}
	return out, nil
}

// pickSeverity chooses the most telling severity: a CVSS v3 score, else
// a distribution's word (type Ubuntu) or the database_specific word, else
// a CVSS v4 or v2 vector without a level.
func pickSeverity(ss []severity, word string) (vuln.Severity, error) {
	var best vuln.Severity
	rank := -1
	for i, s := range ss {
		var cand vuln.Severity
		r := 0
		switch s.Type {
		case "CVSS_V3":
			score, err := vuln.CVSS3(s.Score)
			if err != nil {
				return best, fmt.Errorf("[%d]: CVSS_V3 %.80q: %v", i, s.Score, err)
			}
			cand, r = vuln.Severity{Level: vuln.ScoreLevel(score), Score: score, Vector: s.Score, Source: s.Type}, 3
		case "CVSS_V4", "CVSS_V2":
			if !strings.HasPrefix(s.Score, "CVSS:4.0/") && s.Type == "CVSS_V4" || len(s.Score) > 200 {
				return best, fmt.Errorf("[%d]: %s %.80q is not a vector", i, s.Type, s.Score)
			}
			cand, r = vuln.Severity{Level: vuln.Unknown, Vector: s.Score, Source: s.Type}, 1
		case "Ubuntu":
			cand, r = vuln.Severity{Level: vuln.WordLevel(s.Score), Source: s.Type}, 2
		default:
			return best, fmt.Errorf("[%d]: unknown type %.40q", i, s.Type)
		}
		if r > rank {
			best, rank = cand, r
		}
	}
	if rank < 2 && word != "" {
		if l := vuln.WordLevel(word); l != vuln.Unknown {
			best.Level, best.Source = l, "database_specific"
		}
	}
	if best.Level == "" {
		best.Level = vuln.Unknown
	}
	return best, nil
}
