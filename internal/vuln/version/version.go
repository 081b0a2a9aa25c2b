// Package version orders package versions exactly as the package managers
// do: dpkg's algorithm (deb-version(5): epoch, upstream version, Debian
// revision, with '~' sorting before everything including the end) and rpm's
// rpmvercmp (epoch, version, release; alphanumeric segments, '~' before
// everything, '^' after the end but before anything else).
//
// Compare is total: any two strings compare, so a malformed version never
// panics and the order stays antisymmetric and transitive; Valid says
// whether a string is a version the manager itself would accept, and
// importers reject the ones that are not. Comparing allocates nothing.
//
// It imports only the standard library; any package may use it.
//
// # Concurrency
//
// Everything here is a pure function, safe for concurrent use.
package version

import (
	"errors"
	"fmt"
	"strings"
)

// Scheme is a package manager's version order.
type Scheme uint8

// The schemes. The zero Scheme is none: Compare panics on it.
const (
	Dpkg Scheme = iota + 1 // Debian, Ubuntu
	RPM                    // Red Hat, AlmaLinux, Rocky Linux, SUSE
)

// String is the scheme's name as written in findings: "dpkg" or "rpm".
func (s Scheme) String() string {
	switch s {
	case Dpkg:
		return "dpkg"
	case RPM:
		return "rpm"
	}
	return fmt.Sprintf("Scheme(%d)", uint8(s))
}

// ForManager returns the scheme of an inventory package manager name
// ("dpkg", "rpm"); ok is false for any other.
func ForManager(manager string) (s Scheme, ok bool) {
	switch manager {
	case "dpkg":
		return Dpkg, true
	case "rpm":
		return RPM, true
	}
	return 0, false
}

// Compare orders a and b: negative when a is older, zero when the manager
// treats them as the same version, positive when a is newer.
func (s Scheme) Compare(a, b string) int {
	switch s {
	case Dpkg:
		return CompareDpkg(a, b)
	case RPM:
		return CompareRPM(a, b)
	}
	panic("version: Compare on " + s.String())
}

// Valid returns nil when v is a version the manager accepts, and an error
// saying what is wrong otherwise.
func (s Scheme) Valid(v string) error {
	switch s {
	case Dpkg:
		return ValidDpkg(v)
	case RPM:
		return ValidRPM(v)
	}
	return fmt.Errorf("version: no scheme %s", s)
}

// MaxLen bounds a valid version; no real package comes near it.
const MaxLen = 256

// ErrInvalid is wrapped by every Valid error.
var ErrInvalid = errors.New("invalid version")

func invalid(v, why string) error {
	if len(v) > 64 {
		v = v[:64] + "…"
	}
	return fmt.Errorf("%w %q: %s", ErrInvalid, v, why)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// compareDigits compares two runs of decimal digits by value, whatever
// their length (leading zeros do not count).
func compareDigits(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
