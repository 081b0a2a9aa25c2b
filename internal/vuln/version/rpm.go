package version

import "strings"

// rpmParts splits "[epoch:]version[-release]" as rpm's parseEVR does: the
// epoch is the leading digits when a ':' follows them, the release starts
// after the last '-' that follows the epoch.
func rpmParts(v string) (epoch, ver, rel string) {
	n := 0
	for n < len(v) && isDigit(v[n]) {
		n++
	}
	if n < len(v) && v[n] == ':' {
		epoch, v = v[:n], v[n+1:]
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		return epoch, v[:i], v[i+1:]
	}
	return epoch, v, ""
}

// CompareRPM orders two "[epoch:]version[-release]" strings as rpm does
// (rpmVersionCompare): epochs numerically (missing is 0), then versions,
// then releases with rpmvercmp. A missing release is the empty string,
// older than any release.
func CompareRPM(a, b string) int {
	ea, va, ra := rpmParts(a)
	eb, vb, rb := rpmParts(b)
	if c := compareDigits(ea, eb); c != 0 {
		return c
	}
	if c := rpmvercmp(va, vb); c != 0 {
		return c
	}
	return rpmvercmp(ra, rb)
}

func rpmSep(c byte) bool { return !isDigit(c) && !isAlpha(c) && c != '~' && c != '^' }

// rpmvercmp is rpm's comparison of a version or release: separators
// (anything but ASCII letters, digits, '~' and '^') only split segments;
// '~' sorts before anything, the end included (pre-releases); '^' sorts
// after the end but before anything else (snapshots after a release);
// digit segments compare by value and beat letter segments, which compare
// as bytes; the string with segments left over is newer.
func rpmvercmp(a, b string) int {
	if a == b {
		return 0
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for i < len(a) && rpmSep(a[i]) {
			i++
		}
		for j < len(b) && rpmSep(b[j]) {
			j++
		}
		ai, bj := i < len(a), j < len(b)
		if ai && a[i] == '~' || bj && b[j] == '~' {
			if !ai || a[i] != '~' {
				return 1
			}
			if !bj || b[j] != '~' {
				return -1
			}
			i++
			j++
			continue
		}
		if ai && a[i] == '^' || bj && b[j] == '^' {
			switch {
			case !ai:
				return -1
			case !bj:
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
		if !ai || !bj {
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
		if sj == j {
			// b's segment is of the other kind: numbers beat letters.
			if num {
				return 1
			}
			return -1
		}
		var c int
		if num {
			c = compareDigits(a[si:i], b[sj:j])
		} else {
			c = strings.Compare(a[si:i], b[sj:j])
		}
		if c != 0 {
			return c
		}
	}
	switch ai, bj := i < len(a), j < len(b); {
	case !ai && !bj:
		return 0
	case !ai:
		return -1
	}
	return 1
}

// ValidRPM accepts "[epoch:]version[-release]" with a decimal epoch, a
// non-empty version and, after a '-', a non-empty release, made of
// printable ASCII without white space, at most MaxLen bytes.
func ValidRPM(v string) error {
	switch {
	case v == "":
		return invalid(v, "version string is empty")
	case len(v) > MaxLen:
		return invalid(v, "longer than 256 bytes")
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f {
			return invalid(v, "white space, control or non-ASCII character")
		}
	}
	rest := v
	if e, r, ok := strings.Cut(v, ":"); ok {
		switch {
		case e == "":
			return invalid(v, "epoch is empty")
		case !allDigits(e):
			return invalid(v, "epoch is not a number")
		}
		rest = r
	}
	ver, rel, hasRel := rest, "", false
	if i := strings.LastIndexByte(rest, '-'); i >= 0 {
		ver, rel, hasRel = rest[:i], rest[i+1:], true
	}
	switch {
	case ver == "":
		return invalid(v, "version is empty")
	case strings.Contains(ver, ":"):
		return invalid(v, "':' inside the version")
	case hasRel && rel == "":
		return invalid(v, "release is empty")
	}
	return nil
}
