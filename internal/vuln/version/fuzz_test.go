package version

import "testing"

// FuzzCompare: for any three strings and both schemes, Compare does not
// panic, a version equals itself, the order is antisymmetric and
// transitive.
func FuzzCompare(f *testing.F) {
	for _, s := range [][3]string{
		{"1.0", "1.0-0", "1.0~rc1"},
		{"1:2.38.1-5+deb12u3", "2.38.1-5+deb12u3", "2.38.1-5"},
		{"1.0^git1", "1.0~rc1^git1", "1.0.1"},
		{"a:b:c-d-e", "~~", "^^"},
		{"", "-", ":"},
		{"1.0a", "1.0+", "1.0."},
		{"\xff1", "1\x00", "01.000"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		for _, s := range []Scheme{Dpkg, RPM} {
			_ = s.Valid(a)
			if s.Compare(a, a) != 0 {
				t.Fatalf("%s: %q != itself", s, a)
			}
			ab, ba := sign(s.Compare(a, b)), sign(s.Compare(b, a))
			if ab != -ba {
				t.Fatalf("%s: %q vs %q is %d, reversed %d", s, a, b, ab, ba)
			}
			bc, ac := sign(s.Compare(b, c)), sign(s.Compare(a, c))
			if ab <= 0 && bc <= 0 && ac > 0 || ab >= 0 && bc >= 0 && ac < 0 {
				t.Fatalf("%s: not transitive: %q %d %q %d %q but %d", s, a, ab, b, bc, c, ac)
			}
		}
	})
}
