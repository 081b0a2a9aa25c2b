package version

import "strings"

// dpkgParts splits a dpkg version into epoch digits, upstream version and
// revision the way dpkg's parseversion does: surrounding white space is
// dropped, the epoch ends at the first ':', the revision starts after the
// last '-'. For Compare it never fails: a non-numeric epoch makes the
// whole string the upstream version (epoch 0), which keeps the order total.
func dpkgParts(v string) (epoch, upstream, revision string) {
	v = strings.TrimSpace(v)
	if e, rest, ok := strings.Cut(v, ":"); ok && allDigits(e) {
		epoch, v = e, rest
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		return epoch, v[:i], v[i+1:]
	}
	return epoch, v, ""
}

// CompareDpkg orders two dpkg versions as `dpkg --compare-versions` does:
// epochs numerically (missing is 0), then the upstream versions, then the
// revisions (missing is the same as "0": 1.0 and 1.0-0 are equal).
func CompareDpkg(a, b string) int {
	ea, ua, ra := dpkgParts(a)
	eb, ub, rb := dpkgParts(b)
	if c := compareDigits(ea, eb); c != 0 {
		return c
	}
	if c := verrevcmp(ua, ub); c != 0 {
		return c
	}
	return verrevcmp(ra, rb)
}

// dpkgOrder weighs one byte of a non-digit run; i past the end weighs as
// the end of the string. '~' sorts before everything, even the end; the
// end and digits weigh 0; letters before every other character.
func dpkgOrder(s string, i int) int {
	if i >= len(s) {
		return 0
	}
	switch c := s[i]; {
	case isDigit(c):
		return 0
	case isAlpha(c):
		return int(c)
	case c == '~':
		return -1
	default:
		return int(c) + 256
	}
}

// verrevcmp is dpkg's comparison of an upstream version or a revision:
// alternately a run of non-digits, compared byte by byte by dpkgOrder, and
// a run of digits, compared by value.
func verrevcmp(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			if ac, bc := dpkgOrder(a, i), dpkgOrder(b, j); ac != bc {
				return sign(ac - bc)
			}
			// Equal weights here mean both bytes are the same non-digit.
			i++
			j++
		}
		si, sj := i, j
		for i < len(a) && isDigit(a[i]) {
			i++
		}
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		if c := compareDigits(a[si:i], b[sj:j]); c != 0 {
			return c
		}
	}
	return 0
}

// ValidDpkg accepts what dpkg's parseversion accepts without a warning,
// except that an upstream version not starting with a digit is allowed
// (dpkg only warns about it, and old packages have such versions):
//
//	[epoch:]upstream[-revision]
//
// epoch: decimal digits, at most 2147483647; upstream: non-empty, letters,
// digits and . + ~ - :; revision (after the last '-'): non-empty, letters,
// digits and . + ~. No white space inside, at most MaxLen bytes.
func ValidDpkg(v string) error {
	s := strings.TrimSpace(v)
	switch {
	case s == "":
		return invalid(v, "version string is empty")
	case len(s) > MaxLen:
		return invalid(v, "longer than 256 bytes")
	case strings.ContainsAny(s, " \t\n\r\v\f"):
		return invalid(v, "version string has embedded spaces")
	}
	if e, rest, ok := strings.Cut(s, ":"); ok {
		switch {
		case e == "":
			return invalid(v, "epoch in version is empty")
		case !allDigits(e):
			return invalid(v, "epoch in version is not number")
		case compareDigits(e, "2147483647") > 0:
			return invalid(v, "epoch in version is too big")
		case rest == "":
			return invalid(v, "nothing after colon in version number")
		}
		s = rest
	}
	up, rev, hasRev := s, "", false
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		up, rev, hasRev = s[:i], s[i+1:], true
	}
	switch {
	case hasRev && rev == "":
		return invalid(v, "revision number is empty")
	case up == "":
		return invalid(v, "version number is empty")
	}
	for i := 0; i < len(up); i++ {
		if c := up[i]; !isDigit(c) && !isAlpha(c) && !strings.ContainsRune(".-+~:", rune(c)) {
			return invalid(v, "invalid character in version number")
		}
	}
	for i := 0; i < len(rev); i++ {
		if c := rev[i]; !isDigit(c) && !isAlpha(c) && !strings.ContainsRune(".+~", rune(c)) {
			return invalid(v, "invalid character in revision number")
		}
	}
	return nil
}
