package notify

import (
	"encoding/json"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vigil-edr/vigil/internal/alert"
)

// hostile are attacker strings aimed at each format.
var hostile = []string{
	"<!channel> <@U123> <https://evil.example|click> &amp;",
	"*bold* _it_ ~strike~ `code` ```block``` > quote",
	"[click](javascript:alert(1)) ![img](http://evil.example/x.png) <script>alert(1)</script>",
	"@here @channel @all ~town-square #hashtag www.evil.example http://evil.example",
	"{{DATE(2017-02-14T06:08:39Z, SHORT)}} ${expr}",
	"line1\r\nBcc: victim@evil.example\r\n\r\nbody\n.\nQUIT",
	"\u202eevil\u202c \u200b\ufeff zero-width and bidi",
	"\xff\xfe invalid utf-8 \xc3",
	"# heading\n- list\n| a | b |\n---",
	"=?utf-8?q?encoded=3F?= =?",
	strings.Repeat("A", 5000),
}

func FuzzFormats(f *testing.F) {
	for _, h := range hostile {
		f.Add(h, "host-1", "value")
		f.Add("title", h, h)
	}
	f.Fuzz(func(t *testing.T, title, host, value string) {
		for _, ev := range []Event{EventCreated, EventEscalated, EventState, EventTest} {
			m := &Message{Event: ev, Route: value, EscalatedAfterSeconds: 900, Alert: AlertInfo{
				ID: 7, RuleID: title, RuleTitle: title, Level: value, Tags: []string{value, title}, Host: host,
				State: alert.State(value), Count: 2, FirstSeen: time.Unix(1700000000, 0),
				Fields: []Field{{Name: value, Value: title}, {Name: "CommandLine", Value: value}},
			}}
			if ev == EventState {
				m.Change = &StateChange{From: alert.StateNew, To: alert.State(value), By: host}
			}
			checkSlack(t, m)
			checkMarkdown(t, m)
			checkEmail(t, m)
			checkWebhook(t, m)
		}
		checkMdEscape(t, clean(title, maxValue))
	})
}

func TestFormatsHostile(t *testing.T) {
	for _, h := range hostile {
		m := &Message{Event: EventCreated, Alert: AlertInfo{ID: 1, RuleTitle: h, Host: h, Level: "high",
			Fields: []Field{{Name: h, Value: h}}}}
		checkSlack(t, m)
		checkMarkdown(t, m)
		checkEmail(t, m)
		checkWebhook(t, m)
		checkMdEscape(t, clean(h, maxValue))
	}
}

// strs returns every string in a JSON document.
func strs(t *testing.T, b []byte) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	var out []string
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			for k, e := range x {
				out = append(out, k)
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case string:
			out = append(out, x)
		}
	}
	walk(v)
	return out
}

// noHidden: no invisible or control characters other than the newlines
// and zero-width spaces the formats add themselves.
func noHidden(t *testing.T, where, s string) {
	t.Helper()
	for _, r := range s {
		if r == '\n' || r == '\u200b' {
			continue
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' {
			t.Fatalf("%s: hidden character %U in %q", where, r, s)
		}
	}
}

func checkSlack(t *testing.T, m *Message) {
	t.Helper()
	b, err := renderSlack(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range strs(t, b) {
		noHidden(t, "slack", s)
		if strings.ContainsAny(s, "<>") {
			t.Fatalf("slack: raw < or > in %q", s)
		}
		for i := strings.IndexByte(s, '&'); i >= 0; i = strings.IndexByte(s[i+1:], '&') + i + 1 {
			if !strings.HasPrefix(s[i:], "&amp;") && !strings.HasPrefix(s[i:], "&lt;") && !strings.HasPrefix(s[i:], "&gt;") {
				t.Fatalf("slack: bare & in %q", s)
			}
			if strings.IndexByte(s[i+1:], '&') < 0 {
				break
			}
		}
	}
	var msg slackMsg
	json.Unmarshal(b, &msg)
	if msg.Mrkdwn || msg.LinkNames || len(msg.Blocks) == 0 {
		t.Fatalf("slack: formatting on or no blocks: %s", b)
	}
	if n := utf8.RuneCountInString(msg.Blocks[0].Text.Text); n > 150 {
		t.Fatalf("slack: header of %d characters", n)
	}
	for _, bl := range msg.Blocks {
		if bl.Text != nil && bl.Text.Type != "plain_text" {
			t.Fatalf("slack: %s block", bl.Text.Type)
		}
		for _, f := range bl.Fields {
			if f.Type != "plain_text" {
				t.Fatalf("slack: %s field", f.Type)
			}
		}
	}
}

// checkMdEscape: escaped text has no unescaped punctuation, no newline, a
// zero-width space after every mention, link or expression trigger, and
// unescapes back to the input.
func checkMdEscape(t *testing.T, s string) {
	t.Helper()
	out := mdEscape(s)
	if strings.ContainsAny(out, "\r\n") {
		t.Fatalf("markdown: newline in %q", out)
	}
	var plain strings.Builder
	rs := []rune(out)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		if r < 0x80 && (unicode.IsPunct(r) || unicode.IsSymbol(r)) {
			if r != '\\' || i+1 == len(rs) {
				t.Fatalf("markdown: unescaped %q at %d in %q", r, i, out)
			}
			i++
			r = rs[i]
			if !(r < 0x80 && (unicode.IsPunct(r) || unicode.IsSymbol(r))) {
				t.Fatalf("markdown: backslash before %q in %q", r, out)
			}
			if strings.ContainsRune("@~#:.{", r) && (i+1 == len(rs) || rs[i+1] != '\u200b') {
				t.Fatalf("markdown: %q not followed by a zero-width space in %q", r, out)
			}
		}
		if r != '\u200b' {
			plain.WriteRune(r)
		}
	}
	if plain.String() != s {
		t.Fatalf("markdown: %q unescapes to %q, not %q", out, plain.String(), s)
	}
}

func checkMarkdown(t *testing.T, m *Message) {
	t.Helper()
	v := newView(m)
	mm, err := renderMattermost(m)
	if err != nil {
		t.Fatal(err)
	}
	var msg mattermostMsg
	if err := json.Unmarshal(mm, &msg); err != nil {
		t.Fatal(err)
	}
	noHidden(t, "mattermost", msg.Text)
	if !strings.Contains(msg.Text, mdEscape(v.headline)) {
		t.Fatalf("mattermost: headline missing or altered in %q", msg.Text)
	}
	// Every line is one of ours around escaped text: no untrusted newline.
	if n := strings.Count(msg.Text, "\n\n") + 1; n != 1+len(v.facts)+btoi(len(v.fields) > 0)+len(v.fields) {
		t.Fatalf("mattermost: %d lines for %d facts and %d fields", n, len(v.facts), len(v.fields))
	}
	tm, err := renderTeams(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range strs(t, tm) {
		noHidden(t, "teams", s)
		if strings.Contains(s, "{{") || strings.Contains(s, "<at>") {
			t.Fatalf("teams: expression or mention in %q", s)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func checkEmail(t *testing.T, m *Message) {
	t.Helper()
	c := &Channel{Kind: KindEmail, From: "Vigil <vigil@example.org>", To: []string{"soc@example.org"}}
	raw, err := renderEmail(c, &Delivery{ID: 3, Message: *m}, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	head, _, ok := strings.Cut(string(raw), "\r\n\r\n")
	if !ok {
		t.Fatal("email: no header/body separator")
	}
	want := []string{"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
		"Content-Transfer-Encoding", "X-Vigil-Event", "X-Vigil-Delivery", "Auto-Submitted"}
	lines := strings.Split(head, "\r\n")
	if len(lines) != len(want) {
		t.Fatalf("email: %d header lines, want %d:\n%s", len(lines), len(want), head)
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, want[i]+": ") || strings.ContainsAny(l, "\r\n") || len(l) > 998 {
			t.Fatalf("email: header line %d is %q, want %s", i, l, want[i])
		}
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatalf("email: unparsable: %v", err)
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if want := subjectText(newView(m)); err != nil || subj != want || strings.Contains(subj, "=?") {
		t.Fatalf("email: subject %q (%v), want %q", subj, err, want)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil || !utf8.Valid(body) {
		t.Fatalf("email: body: %v", err)
	}
	for _, l := range strings.Split(string(raw[len(head)+4:]), "\r\n") {
		if len(l) > 78 || strings.ContainsRune(l, '\n') {
			t.Fatalf("email: body line %q not quoted-printable", l)
		}
	}
}

func checkWebhook(t *testing.T, m *Message) {
	t.Helper()
	b, err := renderWebhook(&Delivery{ID: 9, Message: *m}, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	var got WebhookBody
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("webhook: %v", err)
	}
	if strings.ContainsAny(string(b), "<>&") {
		t.Fatalf("webhook: raw HTML characters in %s", b)
	}
	if !utf8.ValidString(got.Alert.RuleTitle) || utf8.ValidString(m.Alert.RuleTitle) && got.Alert.RuleTitle != m.Alert.RuleTitle {
		t.Fatalf("webhook: title %q became %q", m.Alert.RuleTitle, got.Alert.RuleTitle)
	}
}

func TestClean(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain", "plain"},
		{"a\r\nb\tc\x00d", "a  b c d"},
		{"\u202eevil", "\ufffdevil"},
		{"x\xffy", "x\ufffdy"},
		{strings.Repeat("é", 10), strings.Repeat("é", 4) + "…"}, // 9 bytes: four 2-byte runes, then the cut
	} {
		max := 64
		if strings.HasPrefix(c.in, "é") {
			max = 9
		}
		if got := clean(c.in, max); got != c.want {
			t.Errorf("clean(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// BenchmarkRender renders one alert in every format.
func BenchmarkRender(b *testing.B) {
	m := &Message{Event: EventCreated, Route: "web servers", Alert: AlertInfo{
		ID: 42, RuleID: "7c8d9e0f-1a2b-4c3d-8e4f-6a7b8c9d0e17", RuleTitle: "Discovery commands run by a web server account <x>",
		Level: "high", Tags: []string{"attack.discovery", "attack.t1033"}, Host: "web-07.corp.example",
		State: alert.StateNew, Count: 3, FirstSeen: time.Unix(1700000000, 0),
		Fields: []Field{{Name: "Image", Value: "/usr/bin/whoami"}, {Name: "CommandLine", Value: "whoami && id && uname -a"}, {Name: "User", Value: "www-data"}},
	}}
	c := &Channel{Kind: KindEmail, From: "vigil@example.org", To: []string{"soc@example.org"}}
	d := &Delivery{ID: 1, Message: *m}
	now := time.Unix(1700000000, 0)
	for _, f := range []struct {
		name string
		fn   func() ([]byte, error)
	}{
		{"webhook", func() ([]byte, error) { return renderWebhook(d, now) }},
		{"slack", func() ([]byte, error) { return renderSlack(m) }},
		{"teams", func() ([]byte, error) { return renderTeams(m) }},
		{"mattermost", func() ([]byte, error) { return renderMattermost(m) }},
		{"email", func() ([]byte, error) { return renderEmail(c, d, now) }},
	} {
		b.Run(f.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.fn(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
