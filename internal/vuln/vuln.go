package vuln

import (
	"fmt"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/inventory"
	"github.com/vigil-edr/vigil/internal/vuln/version"
)

// Sources of advisories.
const (
	SourceOSV    = "osv"
	SourceDebian = "debian" // the Debian Security Tracker
)

// Advisory is one advisory of one source.
type Advisory struct {
	Source   string
	ID       string   // "DSA-5532-1", "CVE-2023-5678", "USN-6543-1", "ALSA-2024:1234"
	Aliases  []string // other names of the same issue (CVE ids)
	Summary  string   // one line, at most MaxSummary bytes
	Modified time.Time
	Severity Severity
	Affected []Affected
}

// MaxSummary bounds Advisory.Summary.
const MaxSummary = 500

// Affected says which versions of one package in one ecosystem an
// advisory affects: those in any of Ranges, and those listed in Versions.
type Affected struct {
	Ecosystem string   `json:"-"` // canonical, see Ecosystem
	Package   string   `json:"-"`
	Ranges    []Range  `json:"ranges,omitempty"`
	Versions  []string `json:"versions,omitempty"`
	// Severity, when set, overrides the advisory's for this package (the
	// Debian tracker's urgency is per release).
	Severity *Severity `json:"severity,omitempty"`
	// Status is the source's word for the state of the package, when it
	// has one (Debian tracker: "resolved", "open").
	Status string `json:"status,omitempty"`
}

// Range is one interval of affected versions: from Introduced ("" means
// every version before) up to Fixed (excluded) or LastAffected (included);
// with neither, every later version is affected and no fix is known.
type Range struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
}

// Level is a normalised severity.
type Level string

// Levels, worst first. Negligible is the Debian tracker's "unimportant"
// and Ubuntu's "negligible"; Unknown is an advisory without a severity.
const (
	Critical   Level = "critical"
	High       Level = "high"
	Medium     Level = "medium"
	Low        Level = "low"
	Negligible Level = "negligible"
	Unknown    Level = "unknown"
)

// Levels lists the levels, worst first.
var Levels = []Level{Critical, High, Medium, Low, Negligible, Unknown}

// Rank orders levels: Critical 5 … Negligible 1, Unknown 0.
func (l Level) Rank() int {
	for i, x := range Levels {
		if x == l {
			return len(Levels) - 1 - i
		}
	}
	return 0
}

// Severity is how bad an issue is, and where that came from.
type Severity struct {
	Level Level `json:"level"`
	// Score is the CVSS base score computed from Vector (CVSS v3.x only);
	// zero when there is none.
	Score  float64 `json:"score,omitempty"`
	Vector string  `json:"vector,omitempty"` // a CVSS vector as given
	// Source names what the level comes from: "CVSS_V3", "CVSS_V4",
	// "Ubuntu", "debian urgency", "database_specific".
	Source string `json:"source,omitempty"`
}

// Ecosystem describes a canonical ecosystem name: "Debian:12",
// "Ubuntu:22.04", "AlmaLinux:9", "Rocky Linux:9", "Red Hat:9".
type Ecosystem struct {
	Name   string
	Scheme version.Scheme
}

// Label is the name as written in a Why: "Debian 12".
func (e Ecosystem) Label() string { return strings.ReplaceAll(e.Name, ":", " ") }

// distros maps an OSV ecosystem's distribution part, and an os-release
// ID, to the canonical distribution name and its version order.
var distros = map[string]struct {
	name   string
	scheme version.Scheme
	major  bool // versions are the major number only ("9", not "9.3")
}{
	"debian":      {"Debian", version.Dpkg, true},
	"ubuntu":      {"Ubuntu", version.Dpkg, false},
	"almalinux":   {"AlmaLinux", version.RPM, true},
	"rocky linux": {"Rocky Linux", version.RPM, true},
	"rocky":       {"Rocky Linux", version.RPM, true},
	"red hat":     {"Red Hat", version.RPM, true},
	"rhel":        {"Red Hat", version.RPM, true},
}

// OSVEcosystem maps an OSV ecosystem string to the canonical one. ok is
// false for ecosystems Vigil does not match (language ecosystems, Alpine,
// SUSE, Ubuntu Pro, a distribution without a release).
//
//	"Debian:12"                              → Debian:12
//	"Ubuntu:22.04:LTS", "Ubuntu:24.10"       → Ubuntu:22.04, Ubuntu:24.10
//	"AlmaLinux:9", "Rocky Linux:8"           → AlmaLinux:9, Rocky Linux:8
//	"Red Hat:enterprise_linux:9::appstream"  → Red Hat:9
func OSVEcosystem(s string) (Ecosystem, bool) {
	parts := strings.Split(s, ":")
	d, ok := distros[strings.ToLower(parts[0])]
	if !ok || len(parts) < 2 {
		return Ecosystem{}, false
	}
	var rel string
	switch d.name {
	case "Ubuntu":
		if strings.EqualFold(parts[1], "Pro") {
			return Ecosystem{}, false // ESM packages: not what a plain host installs
		}
		rel = parts[1]
	case "Red Hat":
		// Red Hat:enterprise_linux:9::appstream, Red Hat:rhel_eus:9.2::baseos
		for _, p := range parts[1:] {
			if p != "" && p[0] >= '0' && p[0] <= '9' {
				rel = p
				break
			}
		}
	default:
		rel = parts[1]
	}
	return canonical(d.name, d.scheme, d.major, rel)
}

func canonical(name string, scheme version.Scheme, major bool, rel string) (Ecosystem, bool) {
	if major {
		rel, _, _ = strings.Cut(rel, ".")
	}
	if rel == "" || len(rel) > 16 {
		return Ecosystem{}, false
	}
	for i := 0; i < len(rel); i++ {
		if c := rel[i]; !(c >= '0' && c <= '9' || c == '.') {
			return Ecosystem{}, false
		}
	}
	return Ecosystem{Name: name + ":" + rel, Scheme: scheme}, true
}

// debianReleases maps Debian code names to release numbers.
var debianReleases = map[string]string{
	"jessie": "8", "stretch": "9", "buster": "10", "bullseye": "11",
	"bookworm": "12", "trixie": "13", "forky": "14",
}

// DebianRelease maps a Debian code name ("bookworm") to its ecosystem
// (Debian:12); ok is false for sid and unknown names.
func DebianRelease(codename string) (Ecosystem, bool) {
	n, ok := debianReleases[codename]
	if !ok {
		return Ecosystem{}, false
	}
	return Ecosystem{Name: "Debian:" + n, Scheme: version.Dpkg}, true
}

// HostEcosystem is the ecosystem of a host's OS (from os-release): ID
// debian and VERSION_ID 12 is Debian:12 (a Debian without VERSION_ID by
// its code name), ubuntu 22.04 is Ubuntu:22.04, almalinux 9.3 is
// AlmaLinux:9. err says why a host cannot be matched.
func HostEcosystem(os *inventory.OS) (Ecosystem, error) {
	if os == nil || os.ID == "" {
		return Ecosystem{}, fmt.Errorf("no OS in the inventory")
	}
	d, ok := distros[strings.ToLower(os.ID)]
	if !ok {
		return Ecosystem{}, fmt.Errorf("OS %q is not matched (Debian, Ubuntu, AlmaLinux, Rocky Linux and Red Hat are)", clip(os.ID, 40))
	}
	if d.name == "Debian" && os.VersionID == "" {
		if e, ok := DebianRelease(os.Codename); ok {
			return e, nil
		}
	}
	e, ok := canonical(d.name, d.scheme, d.major, os.VersionID)
	if !ok {
		return Ecosystem{}, fmt.Errorf("OS %s with version %q is not matched", d.name, clip(os.VersionID, 40))
	}
	return e, nil
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// FileError is a malformed or refused database file, with the place: the
// zip member, the byte offset and the JSON path where known. Its message
// is safe to show (names are quoted and clipped).
type FileError struct {
	File   string // the file as given
	Member string // the zip member, when the file is a zip
	Offset int64  // byte offset in the file or member; -1 when unknown
	Path   string // JSON path ("$.affected[0].ranges[1]"); "" when unknown
	Err    error
}

func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString(clip(e.File, 200))
	if e.Member != "" {
		fmt.Fprintf(&b, ": member %q", clip(e.Member, 200))
	}
	if e.Offset >= 0 {
		fmt.Fprintf(&b, ": at byte %d", e.Offset)
	}
	if e.Path != "" {
		fmt.Fprintf(&b, ": %s", clip(e.Path, 300))
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *FileError) Unwrap() error { return e.Err }
