package vuln

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/vigil-edr/vigil/internal/inventory"
	"github.com/vigil-edr/vigil/internal/vuln/version"
)

// Finding is one advisory affecting one installed package of a host, with
// everything needed to check it by hand.
type Finding struct {
	Source     string   `json:"source"`
	AdvisoryID string   `json:"advisory_id"`
	Aliases    []string `json:"aliases"`
	Summary    string   `json:"summary,omitempty"`
	Ecosystem  string   `json:"ecosystem"`
	// Package is the name the advisory uses: on Debian and Ubuntu the
	// source package. Binaries are the installed packages it stands for.
	Package  string   `json:"package"`
	Binaries []string `json:"binaries"`
	// Installed is the version compared: a dpkg package's source version.
	Installed string `json:"installed_version"`
	// Affected is the range that matched, in words: "< 3.0.13-1~deb12u1",
	// ">= 3.0.0, <= 3.0.11-1", "= 3.0.11-1 (listed)", "all versions".
	Affected string `json:"affected_range"`
	// Fixed is the first fixed version; empty when no fix is known yet.
	Fixed    string   `json:"fixed_version,omitempty"`
	Severity Severity `json:"severity"`
	// Why is one line saying why the host is affected.
	Why string `json:"why"`
}

// Fixable reports whether a fixed version is known.
func (f *Finding) Fixable() bool { return f.Fixed != "" }

// Candidate is one affected entry with its advisory (whose Affected list
// may be empty): what a Store returns for a host's package names.
type Candidate struct {
	Advisory *Advisory
	Affected Affected
}

// unit is one version of a package under the name advisories use.
type unit struct {
	name, version string
	binaries      []string
}

// Units lists the names and versions a host's packages are matched under,
// for scheme: a dpkg package under its source package and source version;
// an rpm package under its own name and version and under its source
// package (with the binary's epoch when the source version has none: a
// source rpm's file name carries no epoch). Packages of another manager
// are left out. Names returns the names alone, for a Store lookup.
func units(pkgs []inventory.Package, scheme version.Scheme) []unit {
	type key struct{ name, version string }
	idx := map[key]int{}
	var out []unit
	add := func(name, ver, binary string) {
		if name == "" || ver == "" {
			return
		}
		k := key{name, ver}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, unit{name: name, version: ver})
		}
		if !slices.Contains(out[i].binaries, binary) {
			out[i].binaries = append(out[i].binaries, binary)
		}
	}
	for _, p := range pkgs {
		s, ok := version.ForManager(p.Manager)
		if !ok || s != scheme {
			continue
		}
		src, srcVer := p.Source, p.SourceVersion
		if src == "" {
			src = p.Name
		}
		if srcVer == "" {
			srcVer = p.Version
		}
		switch scheme {
		case version.Dpkg:
			add(src, srcVer, p.Name)
		case version.RPM:
			add(p.Name, p.Version, p.Name)
			if e, _, ok := strings.Cut(p.Version, ":"); ok && !strings.Contains(srcVer, ":") {
				srcVer = e + ":" + srcVer
			}
			if src != p.Name {
				add(src, srcVer, p.Name)
			}
		}
	}
	for i := range out {
		slices.Sort(out[i].binaries)
	}
	return out
}

// PackageNames returns the names a host's packages are looked up under in
// ecosystem e (see Match), sorted and without duplicates.
func PackageNames(pkgs []inventory.Package, e Ecosystem) []string {
	var names []string
	for _, u := range units(pkgs, e.Scheme) {
		names = append(names, u.name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Match returns the findings for a host's packages in ecosystem e among
// cands (entries of other ecosystems are ignored). One advisory gives at
// most one finding per package name and installed version: the first
// matching range explains it. Findings are sorted by severity (worst
// first), package and advisory.
func Match(pkgs []inventory.Package, e Ecosystem, cands []Candidate) []Finding {
	byName := map[string][]int{}
	us := units(pkgs, e.Scheme)
	for i, u := range us {
		byName[u.name] = append(byName[u.name], i)
	}
	type key struct{ source, id, name, version string }
	seen := map[key]bool{}
	var out []Finding
	for _, c := range cands {
		a := &c.Affected
		if a.Ecosystem != e.Name {
			continue
		}
		for _, i := range byName[a.Package] {
			u := &us[i]
			k := key{c.Advisory.Source, c.Advisory.ID, u.name, u.version}
			if seen[k] {
				continue
			}
			rng, fixed, why, ok := affects(a, u.version, e.Scheme)
			if !ok {
				continue
			}
			seen[k] = true
			sev := c.Advisory.Severity
			if a.Severity != nil {
				sev = *a.Severity
			}
			if sev.Level == "" {
				sev.Level = Unknown
			}
			f := Finding{
				Source: c.Advisory.Source, AdvisoryID: c.Advisory.ID, Aliases: c.Advisory.Aliases,
				Summary: c.Advisory.Summary, Ecosystem: e.Name, Package: u.name,
				Binaries: u.binaries, Installed: u.version, Affected: rng, Fixed: fixed, Severity: sev,
			}
			if f.Aliases == nil {
				f.Aliases = []string{}
			}
			if why == "" {
				f.Why = fmt.Sprintf("%s %s in %s: every version is affected, no fix yet", u.name, u.version, e.Label())
			} else {
				f.Why = fmt.Sprintf("%s %s %s (%s order) in %s", u.name, u.version, why, e.Scheme, e.Label())
			}
			if a.Status != "" {
				f.Why += "; " + sourceLabel(c.Advisory.Source) + ": " + a.Status
			}
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(x, y Finding) int {
		return cmp.Or(
			cmp.Compare(y.Severity.Level.Rank(), x.Severity.Level.Rank()),
			cmp.Compare(y.Severity.Score, x.Severity.Score),
			strings.Compare(x.Package, y.Package),
			strings.Compare(x.Installed, y.Installed),
			strings.Compare(x.Source, y.Source),
			strings.Compare(x.AdvisoryID, y.AdvisoryID))
	})
	return out
}

func sourceLabel(s string) string {
	if s == SourceDebian {
		return "Debian tracker"
	}
	return s
}

// affects decides whether version v is affected by a. It returns the
// matching range in words, the fixed version (empty when none is known)
// and the comparison that decided, for the Why ("" when every version is
// affected).
func affects(a *Affected, v string, s version.Scheme) (rng, fixed, why string, ok bool) {
	for _, r := range a.Ranges {
		if r.Introduced != "" && r.Introduced != "0" && s.Compare(v, r.Introduced) < 0 {
			continue
		}
		if r.Fixed != "" && s.Compare(v, r.Fixed) >= 0 {
			continue
		}
		if r.LastAffected != "" && s.Compare(v, r.LastAffected) > 0 {
			continue
		}
		var conds, whys []string
		if r.Introduced != "" && r.Introduced != "0" {
			conds = append(conds, ">= "+r.Introduced)
			whys = append(whys, ">= introduced "+r.Introduced)
		}
		switch {
		case r.Fixed != "":
			conds = append(conds, "< "+r.Fixed)
			whys = append(whys, "< fixed "+r.Fixed)
		case r.LastAffected != "":
			conds = append(conds, "<= "+r.LastAffected)
			whys = append(whys, "<= last affected "+r.LastAffected)
		}
		if len(conds) == 0 {
			return "all versions", "", "", true
		}
		if r.Fixed == "" {
			whys[len(whys)-1] += ", no fix yet"
		}
		return strings.Join(conds, ", "), r.Fixed, strings.Join(whys, " and "), true
	}
	for _, x := range a.Versions {
		if s.Compare(v, x) != 0 {
			continue
		}
		// A fix named by a range above v still tells what to install.
		for _, r := range a.Ranges {
			if r.Fixed != "" && s.Compare(r.Fixed, v) > 0 && (fixed == "" || s.Compare(r.Fixed, fixed) < 0) {
				fixed = r.Fixed
			}
		}
		why = "is listed as an affected version"
		if fixed != "" {
			why += ", fixed in " + fixed
		}
		return "= " + x + " (listed)", fixed, why, true
	}
	return "", "", "", false
}
