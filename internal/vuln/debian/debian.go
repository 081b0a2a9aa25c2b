// Package debian reads the Debian Security Tracker's JSON export (the
// shape served at security-tracker.debian.org/tracker/data/json): an
// object of source packages, each an object of issues (CVE ids, or
// TEMP-… for issues without one), each with a description and, per
// release code name, the status ("resolved", "open", "undetermined"),
// the fixed_version and the urgency.
//
//	{"openssl": {"CVE-2024-0727": {"description": "…",
//	  "releases": {"bookworm": {"status": "resolved",
//	    "fixed_version": "3.0.13-1~deb12u1", "urgency": "not yet assigned"}}}}}
//
// Each issue becomes one advisory (source "debian") with one affected
// entry per package and known release (bookworm is Debian:12): resolved
// is "every version below fixed_version", open is "every version, no fix
// yet". A fixed_version of "0" means the release was never affected, and
// undetermined issues are not reported; both, and releases without a
// number (sid, experimental), are skipped and counted. The urgency is the
// entry's severity (unimportant is negligible).
//
// The file is streamed one package at a time. Anything that breaks the
// shape, an invalid dpkg version or invalid UTF-8 rejects the whole file
// with a vuln.FileError naming the byte offset and the JSON path.
//
// It imports internal/vuln and internal/vuln/version. Everything here is
// safe for concurrent use.
package debian

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/vigil-edr/vigil/internal/vuln"
	"github.com/vigil-edr/vigil/internal/vuln/version"
)

// MaxFile bounds the file; the real export is under 100 MiB.
const MaxFile = 1 << 30

// Result is what the file held.
type Result struct {
	Advisories []vuln.Advisory
	Skipped    map[string]int // by reason
}

// ErrLimit is wrapped by errors for input over a limit.
var ErrLimit = errors.New("over the limit")

// ReadFile reads the tracker export at path; name is how errors name it.
func ReadFile(path, name string) (Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	return Read(f, name)
}

type release struct {
	Status       string            `json:"status"`
	FixedVersion *string           `json:"fixed_version"`
	Urgency      string            `json:"urgency"`
	Repositories map[string]string `json:"repositories"`
	NoDSA        string            `json:"nodsa"`
	NoDSAReason  string            `json:"nodsa_reason"`
}

type issue struct {
	Description string             `json:"description"`
	Scope       string             `json:"scope"`
	DebianBug   *int64             `json:"debianbug"`
	Releases    map[string]release `json:"releases"`
}

// Read reads a tracker export from r.
func Read(r io.Reader, name string) (Result, error) {
	res := Result{Skipped: map[string]int{}}
	cr := &countingReader{r: io.LimitReader(r, MaxFile+1)}
	dec := json.NewDecoder(bufio.NewReaderSize(cr, 1<<16))
	fail := func(off int64, path string, err error) (Result, error) {
		if cr.n > MaxFile {
			return Result{}, &vuln.FileError{File: name, Offset: -1, Err: fmt.Errorf("%w: more than %d bytes", ErrLimit, MaxFile)}
		}
		return Result{}, &vuln.FileError{File: name, Offset: off, Path: path, Err: err}
	}
	// jsonFail reports a decoding error in the value at path that starts
	// at byte base.
	jsonFail := func(base int64, path string, err error) (Result, error) {
		if cr.n > MaxFile {
			return fail(-1, "", nil)
		}
		fe := vuln.JSONError(name, "", base, err)
		fe.Path = path + strings.TrimPrefix(fe.Path, "$")
		return Result{}, fe
	}
	tok, err := dec.Token()
	if err != nil {
		return jsonFail(0, "$", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fail(0, "$", errors.New("not a JSON object of packages"))
	}
	byID := map[string]*vuln.Advisory{}
	for dec.More() {
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return jsonFail(off, "$", err)
		}
		pkg := tok.(string) // object keys are strings
		at := fmt.Sprintf("$[%q]", clip(pkg))
		if !packageName(pkg) {
			return fail(off, at, errors.New("not a Debian source package name"))
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return jsonFail(0, at, err)
		}
		base := dec.InputOffset() - int64(len(raw)) // where the value starts
		if bad := vuln.InvalidUTF8(raw); bad >= 0 {
			return fail(base+bad, at, errors.New("invalid UTF-8"))
		}
		var issues map[string]issue
		if err := json.Unmarshal(raw, &issues); err != nil {
			return jsonFail(base, at, err)
		}
		ids := make([]string, 0, len(issues))
		for id := range issues {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			is := issues[id]
			at := fmt.Sprintf("%s[%q]", at, clip(id))
			if !vuln.Name(id) {
				return fail(-1, at, errors.New("not a usable issue id"))
			}
			codes := make([]string, 0, len(is.Releases))
			for c := range is.Releases {
				codes = append(codes, c)
			}
			slices.Sort(codes)
			for _, code := range codes {
				rel := is.Releases[code]
				at := fmt.Sprintf("%s.releases[%q]", at, clip(code))
				eco, ok := vuln.DebianRelease(code)
				if !ok {
					res.Skipped["release "+vuln.CleanText(code, 20)]++
					continue
				}
				a := vuln.Affected{Ecosystem: eco.Name, Package: pkg, Status: rel.Status}
				switch rel.Status {
				case "resolved":
					if rel.FixedVersion == nil {
						return fail(-1, at+".fixed_version", errors.New("resolved without a fixed_version"))
					}
					fv := *rel.FixedVersion
					if fv == "0" {
						res.Skipped["not affected"]++
						continue
					}
					if err := version.ValidDpkg(fv); err != nil {
						return fail(-1, at+".fixed_version", err)
					}
					a.Ranges = []vuln.Range{{Fixed: fv}}
				case "open":
					if rel.FixedVersion != nil && *rel.FixedVersion != "" {
						return fail(-1, at+".fixed_version", errors.New("an open issue with a fixed_version"))
					}
					a.Ranges = []vuln.Range{{}}
				case "undetermined":
					res.Skipped["undetermined"]++
					continue
				default:
					return fail(-1, at+".status", fmt.Errorf("unknown status %.40q", rel.Status))
				}
				a.Severity = &vuln.Severity{Level: vuln.WordLevel(rel.Urgency), Source: "debian urgency"}
				adv := byID[id]
				if adv == nil {
					adv = &vuln.Advisory{Source: vuln.SourceDebian, ID: id, Aliases: []string{},
						Summary: vuln.CleanText(is.Description, vuln.MaxSummary), Severity: vuln.Severity{Level: vuln.Unknown}}
					byID[id] = adv
				}
				adv.Affected = append(adv.Affected, a)
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return jsonFail(dec.InputOffset(), "$", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail(dec.InputOffset(), "$", errors.New("data after the object"))
	}
	if cr.n > MaxFile {
		return fail(-1, "", nil)
	}
	ids := make([]string, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		res.Advisories = append(res.Advisories, *byID[id])
	}
	return res, nil
}

// packageName: Debian policy's source package names (lower-case letters,
// digits, '+', '-', '.'; at least two characters, starting with an
// alphanumeric); up to 200 bytes.
func packageName(s string) bool {
	if len(s) < 2 || len(s) > 200 || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
