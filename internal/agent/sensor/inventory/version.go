package inventory

import (
	"strconv"
	"strings"
)

// compareVersions orders two versions of one package by its manager's
// rules: negative when a is older than b, zero when equal, positive when
// newer. It decides whether a version change is an upgrade or a downgrade.
func compareVersions(manager, a, b string) int {
	if manager == "rpm" {
		return compareRPM(a, b)
	}
	return compareDpkg(a, b)
}

// splitEpoch cuts "epoch:rest"; a missing or non-numeric epoch is 0.
func splitEpoch(v string) (uint64, string) {
	if e, rest, ok := strings.Cut(v, ":"); ok {
		n, err := strconv.ParseUint(e, 10, 64)
		if err == nil {
			return n, rest
		}
	}
	return 0, v
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compareDpkg is dpkg's algorithm (deb-version(7)): epochs numerically,
// then the upstream version and the Debian revision (after the last '-')
// by verrevcmp.
func compareDpkg(a, b string) int {
	ea, ra := splitEpoch(a)
	eb, rb := splitEpoch(b)
	if c := cmpUint(ea, eb); c != 0 {
		return c
	}
	ua, da := ra, ""
	if i := strings.LastIndexByte(ra, '-'); i >= 0 {
		ua, da = ra[:i], ra[i+1:]
	}
	ub, db := rb, ""
	if i := strings.LastIndexByte(rb, '-'); i >= 0 {
		ub, db = rb[:i], rb[i+1:]
	}
	if c := verrevcmp(ua, ub); c != 0 {
		return c
	}
	return verrevcmp(da, db)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return (c|0x20) >= 'a' && (c|0x20) <= 'z' }

// dpkgOrder weighs one character of a non-digit run: '~' sorts before
// everything, even the end of the string; letters before other characters.
func dpkgOrder(s string, i int) int {
	if i >= len(s) {
		return 0
	}
	c := s[i]
	switch {
	case isDigit(c):
		return 0
	case isAlpha(c):
		return int(c)
	case c == '~':
		return -1
	}
	return int(c) + 256
}

func verrevcmp(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			if ac, bc := dpkgOrder(a, i), dpkgOrder(b, j); ac != bc {
				return ac - bc
			}
			i++
			j++
		}
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		first := 0
		for i < len(a) && j < len(b) && isDigit(a[i]) && isDigit(b[j]) {
			if first == 0 {
				first = int(a[i]) - int(b[j])
			}
			i++
			j++
		}
		if i < len(a) && isDigit(a[i]) {
			return 1
		}
		if j < len(b) && isDigit(b[j]) {
			return -1
		}
		if first != 0 {
			return first
		}
	}
	return 0
}

// compareRPM compares "[epoch:]version-release" strings as rpm does: the
// epoch numerically, then version and release with rpmvercmp.
func compareRPM(a, b string) int {
	ea, ra := splitEpoch(a)
	eb, rb := splitEpoch(b)
	if c := cmpUint(ea, eb); c != 0 {
		return c
	}
	va, rela, _ := cutLast(ra, '-')
	vb, relb, _ := cutLast(rb, '-')
	if c := rpmvercmp(va, vb); c != 0 {
		return c
	}
	return rpmvercmp(rela, relb)
}

func cutLast(s string, sep byte) (string, string, bool) {
	if i := strings.LastIndexByte(s, sep); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// rpmvercmp is rpm's segment comparison: runs of digits compare
// numerically and beat runs of letters; '~' sorts before anything
// (pre-releases), '^' after the end but before anything else (snapshots);
// other characters only separate segments.
func rpmvercmp(a, b string) int {
	if a == b {
		return 0
	}
	sep := func(c byte) bool { return !isDigit(c) && !isAlpha(c) && c != '~' && c != '^' }
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for i < len(a) && sep(a[i]) {
			i++
		}
		for j < len(b) && sep(b[j]) {
			j++
		}
		at, bt := i < len(a), j < len(b)
		if (at && a[i] == '~') || (bt && b[j] == '~') {
			if !at || a[i] != '~' {
				return 1
			}
			if !bt || b[j] != '~' {
				return -1
			}
			i++
			j++
			continue
		}
		if (at && a[i] == '^') || (bt && b[j] == '^') {
			switch {
			case !at:
				return -1
			case !bt:
				return 1
			case a[i] != '^':
				return 1
			case b[j] != '^':
				return -1
			}
			i++
			j++
			continue
		}
		if !at || !bt {
			break
		}
		si, sj := i, j
		num := isDigit(a[i])
		class := isAlpha
		if num {
			class = isDigit
		}
		for i < len(a) && class(a[i]) {
			i++
		}
		for j < len(b) && class(b[j]) {
			j++
		}
		sa, sb := a[si:i], b[sj:j]
		if sb == "" {
			if num {
				return 1
			}
			return -1
		}
		if num {
			sa, sb = strings.TrimLeft(sa, "0"), strings.TrimLeft(sb, "0")
			if len(sa) != len(sb) {
				return cmpUint(uint64(len(sa)), uint64(len(sb)))
			}
		}
		if c := strings.Compare(sa, sb); c != 0 {
			return c
		}
	}
	at, bt := i < len(a), j < len(b)
	switch {
	case !at && !bt:
		return 0
	case at:
		return 1
	}
	return -1
}
