package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Bounds on untrusted text in a notification (bytes, before escaping).
const (
	maxTitle = 256
	maxValue = 1024
	maxName  = 128
	maxTags  = 32
)

// zwsp (U+200B ZERO WIDTH SPACE) is inserted where a chat renderer would
// otherwise see a mention (@channel), a bare link (evil.example, http://)
// or a card expression ({{DATE(…)}}). It is invisible when displayed.
const zwsp = "\u200b"

// clean makes an untrusted string safe to place in any format: invalid
// UTF-8 becomes U+FFFD, control characters (CR, LF, tab, NUL, C1 …) become
// spaces, invisible format characters (bidi overrides such as U+202E,
// zero-width characters, the BOM: Unicode category Cf) become U+FFFD so
// they cannot reorder or hide text, and the result is cut at a rune
// boundary to at most max bytes followed by "…" when cut.
func clean(s string, max int) string {
	var b strings.Builder
	b.Grow(min(len(s), max+3))
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if b.Len()+utf8.RuneLen(r) > max {
			b.WriteString("…")
			break
		}
		switch {
		case unicode.IsControl(r):
			b.WriteByte(' ')
		case unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029':
			b.WriteRune('\uFFFD')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// view is a message as lines of cleaned text: what every human-readable
// format shows, before that format's escaping.
type view struct {
	headline string
	facts    [][2]string // label (ours), value (cleaned)
	fields   [][2]string // matched field name, value (both cleaned)
}

func levelUpper(l string) string { return strings.ToUpper(clean(l, 32)) }

func newView(m *Message) view {
	a := &m.Alert
	title := clean(a.RuleTitle, maxTitle)
	host := clean(a.Host, maxName*2)
	var v view
	switch m.Event {
	case EventCreated:
		v.headline = fmt.Sprintf("%s alert: %s on %s", levelUpper(a.Level), title, host)
	case EventEscalated:
		v.headline = fmt.Sprintf("ESCALATION: %s alert not acknowledged after %s: %s on %s",
			levelUpper(a.Level), time.Duration(m.EscalatedAfterSeconds)*time.Second, title, host)
	case EventState:
		to, by := "", ""
		if m.Change != nil {
			to, by = clean(string(m.Change.To), 32), clean(m.Change.By, maxName)
		}
		v.headline = fmt.Sprintf("Alert %d %s by %s: %s on %s", a.ID, to, by, title, host)
	case EventTest:
		v.headline = "Vigil test notification: " + title
	default:
		v.headline = "Vigil notification: " + title
	}
	add := func(label, value string) {
		if value != "" {
			v.facts = append(v.facts, [2]string{label, value})
		}
	}
	if a.ID != 0 {
		add("Alert", strconv.FormatInt(a.ID, 10))
	}
	add("Host", host)
	add("Level", clean(a.Level, 32))
	add("Rule", clean(a.RuleID, maxName*2))
	var tags []string
	for i, t := range a.Tags {
		if i == maxTags {
			tags = append(tags, "…")
			break
		}
		tags = append(tags, clean(t, maxName))
	}
	add("Tags", strings.Join(tags, ", "))
	add("State", clean(string(a.State), 32))
	if a.Count > 0 {
		add("Occurrences", strconv.Itoa(a.Count))
	}
	if !a.FirstSeen.IsZero() {
		add("First seen", a.FirstSeen.UTC().Format(time.RFC3339))
	}
	add("Route", clean(m.Route, maxName))
	for i, f := range a.Fields {
		if i == MaxFields {
			break
		}
		v.fields = append(v.fields, [2]string{clean(f.Name, maxName), clean(f.Value, maxValue)})
	}
	return v
}

// ---- Slack ----

// slackEscape applies the escaping Slack requires in message text: &, <
// and > as HTML entities. With them escaped, nothing can form a mention
// (<!channel>, <@U123>) or a link (<https://x|text>); the text is also sent
// with mrkdwn off and in plain_text blocks, so *, _, ~ and ` are literal.
func slackEscape(s string) string { return slackClip(s, -1) }

// slackClip escapes s and cuts it, at a character and never inside an
// entity, so that the result has at most max characters (max < 0: no
// limit), ending in "…" when cut.
func slackClip(s string, max int) string {
	esc := func(r rune) string {
		switch r {
		case '&':
			return "&amp;"
		case '<':
			return "&lt;"
		case '>':
			return "&gt;"
		}
		return string(r)
	}
	total := 0
	for _, r := range s {
		total += utf8.RuneCountInString(esc(r))
	}
	limit := -1 // no cut
	if max >= 0 && total > max {
		limit = max - 1 // room for "…"
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		e := esc(r)
		w := utf8.RuneCountInString(e)
		if limit >= 0 && n+w > limit {
			b.WriteString("…")
			break
		}
		b.WriteString(e)
		n += w
	}
	return b.String()
}

type slackText struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji bool   `json:"emoji"`
}

type slackBlock struct {
	Type   string      `json:"type"`
	Text   *slackText  `json:"text,omitempty"`
	Fields []slackText `json:"fields,omitempty"`
}

type slackMsg struct {
	Text        string       `json:"text"`
	Mrkdwn      bool         `json:"mrkdwn"`
	LinkNames   bool         `json:"link_names"`
	UnfurlLinks bool         `json:"unfurl_links"`
	UnfurlMedia bool         `json:"unfurl_media"`
	Blocks      []slackBlock `json:"blocks"`
}

func plain(s string) slackText { return slackText{Type: "plain_text", Text: slackEscape(s)} }

// renderSlack is a Slack incoming-webhook body (Block Kit).
func renderSlack(m *Message) ([]byte, error) {
	v := newView(m)
	msg := slackMsg{Text: slackEscape(v.headline), Blocks: []slackBlock{
		{Type: "header", Text: &slackText{Type: "plain_text", Text: slackClip(v.headline, 150)}}, // Slack's header limit
	}}
	var facts []slackText
	for _, f := range v.facts {
		facts = append(facts, plain(f[0]+": "+f[1]))
	}
	for len(facts) > 0 { // at most 10 fields per section
		n := min(len(facts), 10)
		msg.Blocks = append(msg.Blocks, slackBlock{Type: "section", Fields: facts[:n]})
		facts = facts[n:]
	}
	if len(v.fields) > 0 {
		var b strings.Builder
		b.WriteString("Matched fields:")
		for _, f := range v.fields {
			b.WriteString("\n" + f[0] + " = " + f[1])
		}
		t := slackText{Type: "plain_text", Text: slackClip(b.String(), 3000)} // Slack's section limit
		msg.Blocks = append(msg.Blocks, slackBlock{Type: "section", Text: &t})
	}
	return json.Marshal(msg)
}

// ---- Markdown (Mattermost, Teams) ----

// mdEscape makes cleaned text literal in CommonMark and the chat dialects
// built on it: every ASCII punctuation character gets a backslash (which
// CommonMark defines as "this character, literally"), so no emphasis,
// link, image, HTML, heading, list, table or code span can start; and a
// zero-width space follows every @, ~ and # (mentions, channel links,
// hashtags), every : and . (bare links such as http://x and evil.example)
// and every { (Adaptive Card expressions), which a renderer might still
// recognise in the unescaped text.
func mdEscape(s string) string {
	var b strings.Builder
	b.Grow(len(s) * 2)
	for _, r := range s {
		if r < 0x80 && unicode.IsPunct(r) || r < 0x80 && unicode.IsSymbol(r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
		switch r {
		case '@', '~', '#', ':', '.', '{':
			b.WriteString(zwsp)
		}
	}
	return b.String()
}

type mattermostMsg struct {
	Username string `json:"username"`
	Text     string `json:"text"`
}

// markdownLines is the message as Markdown lines, each untrusted value
// escaped; ours (labels, bold markers) are not.
func markdownLines(v view) []string {
	lines := []string{"**" + mdEscape(v.headline) + "**"}
	for _, f := range v.facts {
		lines = append(lines, "**"+f[0]+":** "+mdEscape(f[1]))
	}
	if len(v.fields) > 0 {
		lines = append(lines, "**Matched fields:**")
		for _, f := range v.fields {
			lines = append(lines, "- "+mdEscape(f[0])+" \\= "+mdEscape(f[1]))
		}
	}
	return lines
}

// renderMattermost is a Mattermost incoming-webhook body.
func renderMattermost(m *Message) ([]byte, error) {
	// Two trailing spaces would be a hard break; a blank line is safer.
	return json.Marshal(mattermostMsg{Username: "Vigil", Text: strings.Join(markdownLines(newView(m)), "\n\n")})
}

type teamsMsg struct {
	Type        string            `json:"type"`
	Attachments []teamsAttachment `json:"attachments"`
}

type teamsAttachment struct {
	ContentType string    `json:"contentType"`
	Content     teamsCard `json:"content"`
}

type teamsCard struct {
	Schema  string           `json:"$schema"`
	Type    string           `json:"type"`
	Version string           `json:"version"`
	Body    []map[string]any `json:"body"`
}

// renderTeams is a Microsoft Teams incoming-webhook body: a message with
// one Adaptive Card (what Teams Workflows webhooks accept). TextBlock and
// FactSet text is Markdown, escaped like Mattermost's.
func renderTeams(m *Message) ([]byte, error) {
	v := newView(m)
	facts := []map[string]string{}
	for _, f := range v.facts {
		facts = append(facts, map[string]string{"title": f[0], "value": mdEscape(f[1])})
	}
	body := []map[string]any{
		{"type": "TextBlock", "text": mdEscape(v.headline), "weight": "Bolder", "size": "Medium", "wrap": true},
		{"type": "FactSet", "facts": facts},
	}
	if len(v.fields) > 0 {
		var lines []string
		for _, f := range v.fields {
			lines = append(lines, "- "+mdEscape(f[0])+" \\= "+mdEscape(f[1]))
		}
		body = append(body, map[string]any{"type": "TextBlock", "text": "Matched fields:\n\n" + strings.Join(lines, "\n"), "wrap": true})
	}
	return json.Marshal(teamsMsg{Type: "message", Attachments: []teamsAttachment{{
		ContentType: "application/vnd.microsoft.card.adaptive",
		Content: teamsCard{Schema: "http://adaptivecards.io/schemas/adaptive-card.json", Type: "AdaptiveCard",
			Version: "1.4", Body: body},
	}}})
}

// ---- generic webhook ----

// renderWebhook is the generic webhook body. JSON encoding is the escaping:
// strings are sent as they are (invalid UTF-8 replaced by U+FFFD, and <, >
// and & as \u escapes, so a receiver pasting them into HTML is safe too).
func renderWebhook(d *Delivery, now time.Time) ([]byte, error) {
	return json.Marshal(WebhookBody{Version: 1, DeliveryID: d.ID, SentAt: now.UTC().Truncate(time.Second), Message: d.Message})
}

// ---- email ----

// subject is the email subject: cleaned (so no CR or LF, the header
// injection vector, can reach it), then RFC 2047 Q-encoded when it is not
// plain ASCII. An encoded word in the untrusted text ("=?utf-8?q?…?=")
// would be decoded by mail clients into whatever it hides, so "=?" gets a
// zero-width space, which also makes the encoder encode the whole subject.
func subject(v view) string {
	return mime.QEncoding.Encode("utf-8", subjectText(v))
}

func subjectText(v view) string {
	return strings.TrimSpace("[Vigil] " + strings.ReplaceAll(v.headline, "=?", "="+zwsp+"?")) // mail readers trim it
}

// renderEmail is a complete RFC 5322 message (CRLF line ends), ready for
// SMTP DATA, which dot-stuffs it. Addresses were validated when the
// channel was saved and are re-formatted by net/mail here.
func renderEmail(c *Channel, d *Delivery, now time.Time) ([]byte, error) {
	from, err := mail.ParseAddress(c.From)
	if err != nil {
		return nil, fmt.Errorf("from address: %w", err)
	}
	var to []string
	for _, a := range c.To {
		addr, err := mail.ParseAddress(a)
		if err != nil {
			return nil, fmt.Errorf("to address: %w", err)
		}
		to = append(to, addr.String())
	}
	v := newView(&d.Message)
	var b bytes.Buffer
	hdr := func(k, val string) { b.WriteString(k + ": " + val + "\r\n") }
	hdr("From", from.String())
	hdr("To", strings.Join(to, ", "))
	hdr("Subject", subject(v))
	hdr("Date", now.UTC().Format(time.RFC1123Z))
	hdr("Message-ID", fmt.Sprintf("<vigil-%d-%d@%s>", d.ID, d.Attempts, domainOf(from.Address)))
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", `text/plain; charset="utf-8"`)
	hdr("Content-Transfer-Encoding", "quoted-printable")
	hdr("X-Vigil-Event", string(d.Message.Event))
	hdr("X-Vigil-Delivery", strconv.FormatInt(d.ID, 10))
	hdr("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	var text strings.Builder
	text.WriteString(v.headline + "\r\n\r\n")
	for _, f := range v.facts {
		text.WriteString(f[0] + ": " + f[1] + "\r\n")
	}
	if len(v.fields) > 0 {
		text.WriteString("\r\nMatched fields:\r\n")
		for _, f := range v.fields {
			text.WriteString("  " + f[0] + " = " + f[1] + "\r\n")
		}
	}
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(text.String()))
	qp.Close()
	b.WriteString("\r\n")
	return b.Bytes(), nil
}

func domainOf(addr string) string {
	if _, d, ok := strings.Cut(addr, "@"); ok && validHostname(d) {
		return d
	}
	return "vigil.invalid"
}
