package lines

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReader(t *testing.T) {
	long := strings.Repeat("x", 100)
	for _, tc := range []struct {
		name      string
		in        string
		max       int
		want      []string
		truncated uint64
	}{
		{"empty", "", 64, nil, 0},
		{"lines", "a\nbb\n", 64, []string{"a\n", "bb\n"}, 0},
		{"last line without newline", "a\nb", 64, []string{"a\n", "b"}, 0},
		{"blank lines count", "\n\n", 64, []string{"\n", "\n"}, 0},
		{"cut beyond the buffer", long + "\nnext\n", 16, []string{long[:16], "next\n"}, 1},
		{"cut within the buffer", long[:20] + "\nnext\n", 10, []string{long[:10], "next\n"}, 1},
		{"cut at the end of input", "ok\n" + long, 16, []string{"ok\n", long[:16]}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tc.in), tc.max)
			var got []string
			for {
				b, err := r.Next()
				if len(b) > 0 {
					got = append(got, string(b))
				}
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("lines %q, want %q", got, tc.want)
			}
			if r.Line() != uint64(len(tc.want)) {
				t.Errorf("Line() = %d, want %d", r.Line(), len(tc.want))
			}
			if r.Truncated() != tc.truncated {
				t.Errorf("Truncated() = %d, want %d", r.Truncated(), tc.truncated)
			}
		})
	}
}
