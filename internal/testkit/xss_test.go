package testkit

import (
	"html"
	"regexp"
	"strings"
	"testing"
)

// tagStart is where an HTML tokenizer starts a tag.
var tagStart = regexp.MustCompile(`<[A-Za-z/!]`)

// TestXSSPayloads: 200 distinct payloads, and the checker finds every one
// that carries markup or a script URL when it is pasted into a page raw,
// and none when it is escaped.
func TestXSSPayloads(t *testing.T) {
	ps := XSSPayloads()
	seen := map[string]bool{}
	for _, p := range ps {
		if seen[p] {
			t.Errorf("duplicate payload %q", p)
		}
		seen[p] = true
	}
	if len(seen) != 200 {
		t.Fatalf("%d distinct payloads, want 200", len(seen))
	}
	page := func(cell, href string) string {
		return `<!doctype html><html><head><title>t</title><script src="/static/console.js"></script></head><body><table><tr><td>` +
			cell + `</td></tr></table><a href="` + href + `">x</a></body></html>`
	}
	for _, p := range ps {
		dangerous := tagStart.MatchString(p) || strings.HasPrefix(p, "javascript:") || strings.HasPrefix(p, "data:")
		raw := CheckInertHTML(page(p, "/x"), p)
		if strings.HasPrefix(p, "javascript:") || strings.HasPrefix(p, "data:") {
			raw = CheckInertHTML(page("x", p))
		}
		if dangerous && len(raw) == 0 {
			t.Errorf("raw payload not detected: %q", p)
		}
		if got := CheckInertHTML(page(html.EscapeString(p), "/x"), p); len(got) != 0 {
			t.Errorf("escaped payload %q flagged: %v", p, got)
		}
	}
}
