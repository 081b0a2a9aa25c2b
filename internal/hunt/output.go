package hunt

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
)

// Writer formats detections for output. Log content is attacker-controlled:
// the table format escapes control characters so a command line cannot drive
// the analyst's terminal, and the CSV format neutralises spreadsheet formulas.
type Writer interface {
	Write(Detection) error
	Flush() error
}

// NewWriter returns a writer for format "table", "jsonl" or "csv".
func NewWriter(format string, w io.Writer) (Writer, error) {
	switch format {
	case "jsonl", "json":
		return &jsonlWriter{enc: json.NewEncoder(w)}, nil
	case "csv":
		cw := csv.NewWriter(w)
		return &csvWriter{w: cw}, nil
	case "table", "":
		return &tableWriter{w: w}, nil
	}
	return nil, fmt.Errorf("unknown output format %q (want table, jsonl or csv)", format)
}

// jsonDetection is the JSON lines schema; its keys are part of the CLI's
// contract.
type jsonDetection struct {
	RuleID      string           `json:"rule_id"`
	RuleTitle   string           `json:"rule_title"`
	Level       string           `json:"level"`
	Tags        []string         `json:"tags"`
	Timestamp   string           `json:"timestamp"`
	Source      string           `json:"source"`
	RecordID    uint64           `json:"record_id"`
	Fields      map[string]any   `json:"fields"`
	Correlation *jsonCorrelation `json:"correlation,omitempty"`
}

type jsonCorrelation struct {
	Type    string            `json:"type"`
	GroupBy map[string]string `json:"group_by"`
	Value   float64           `json:"value"`
	Events  []jsonRef         `json:"events"`
}

type jsonRef struct {
	Source   string `json:"source"`
	RecordID uint64 `json:"record_id"`
	Rule     string `json:"rule"`
}

type jsonlWriter struct{ enc *json.Encoder }

func (j *jsonlWriter) Write(d Detection) error {
	fields := make(map[string]any, len(d.Fields))
	for _, f := range d.Fields {
		switch prev := fields[f.Name].(type) {
		case nil:
			fields[f.Name] = f.Value
		case string:
			if prev != f.Value {
				fields[f.Name] = []string{prev, f.Value}
			}
		case []string:
			fields[f.Name] = append(prev, f.Value)
		}
	}
	tags := d.Tags
	if tags == nil {
		tags = []string{}
	}
	out := jsonDetection{
		RuleID: d.RuleID, RuleTitle: d.RuleTitle, Level: d.Level.String(), Tags: tags,
		Timestamp: timestamp(d.Time), Source: d.Source, RecordID: d.Record, Fields: fields,
	}
	if h := d.Correlation; h != nil {
		c := &jsonCorrelation{Type: string(h.Rule.Correlation.Type), GroupBy: map[string]string{}, Value: h.Value}
		for _, g := range h.GroupBy {
			c.GroupBy[g.Field] = g.Value
		}
		for _, r := range h.Refs {
			c.Events = append(c.Events, jsonRef{Source: r.Source, RecordID: r.Record, Rule: r.Rule})
		}
		out.Correlation = c
	}
	return j.enc.Encode(out)
}

func (j *jsonlWriter) Flush() error { return nil }

func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

type csvWriter struct {
	w      *csv.Writer
	header bool
}

func (c *csvWriter) Write(d Detection) error {
	if !c.header {
		c.header = true
		if err := c.w.Write([]string{"timestamp", "level", "rule_title", "rule_id", "source", "record_id", "tags", "fields"}); err != nil {
			return err
		}
	}
	return c.w.Write([]string{
		timestamp(d.Time), d.Level.String(), cell(d.RuleTitle), d.RuleID, cell(d.Source),
		fmt.Sprint(d.Record), strings.Join(d.Tags, " "), cell(fieldText(d, false)),
	})
}

func (c *csvWriter) Flush() error { c.w.Flush(); return c.w.Error() }

// cell stops spreadsheets from reading a value as a formula (CSV injection).
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

type tableWriter struct {
	w      io.Writer
	header bool
}

func (t *tableWriter) Write(d Detection) error {
	if !t.header {
		t.header = true
		if _, err := fmt.Fprintf(t.w, "%-24s  %-13s  %-60s  %s\n", "TIMESTAMP", "LEVEL", "RULE", "SOURCE:RECORD  FIELDS"); err != nil {
			return err
		}
	}
	ts := timestamp(d.Time)
	if len(ts) > 24 {
		ts = ts[:24]
	}
	_, err := fmt.Fprintf(t.w, "%-24s  %-13s  %-60s  %s:%d  %s\n", ts, d.Level, clipRunes(SafeText(d.RuleTitle), 60),
		SafeText(d.Source), d.Record, clipRunes(fieldText(d, true), 400))
	return err
}

func (t *tableWriter) Flush() error { return nil }

func fieldText(d Detection, escape bool) string {
	var b strings.Builder
	for i, f := range d.Fields {
		if i > 0 {
			b.WriteString(" ¦ ")
		}
		v := f.Value
		if escape {
			v = SafeText(v)
		}
		b.WriteString(f.Name)
		b.WriteString(": ")
		b.WriteString(v)
	}
	return b.String()
}

// SafeText renders control characters (including ESC, which starts terminal
// escape sequences) as Go escapes.
func SafeText(s string) string {
	clean := true
	for _, r := range s {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := fmt.Sprintf("%q", string(r))
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func clipRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
