package hunt

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/hunt/winevent"
)

// Limits of the JSON reader.
const (
	// MaxJSONValue bounds one JSON value (one event); a larger one ends the
	// file with a warning, since the decoder would have to hold it whole.
	MaxJSONValue = 16 << 20
	// MaxJSONDepth bounds nesting; deeper parts of an event are kept as their
	// JSON text in one field.
	MaxJSONDepth = 32
)

// ErrValueTooLarge reports a JSON value over MaxJSONValue.
var ErrValueTooLarge = errors.New("JSON value larger than the limit")

// jsonReader reads JSON lines, concatenated JSON objects or one top-level
// array of objects. Windows events in SigmaHQ's rendering ({"Event":
// {"System": …}}) are flattened like EVTX records; any other object is
// flattened with dotted names (a.b.c) and arrays as repeated fields.
type jsonReader struct {
	src     string
	br      *bufio.Reader
	budget  *budgetReader
	dec     *json.Decoder
	inArray bool
	started bool
	n       uint64
	skipped int
	first   []string
}

type budgetReader struct {
	r    io.Reader
	left int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, ErrValueTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

func newJSONReader(r io.Reader, src string) *jsonReader {
	br := bufio.NewReaderSize(r, 256<<10)
	b := &budgetReader{r: br, left: MaxJSONValue}
	dec := json.NewDecoder(b)
	dec.UseNumber()
	return &jsonReader{src: src, br: br, budget: b, dec: dec}
}

func (j *jsonReader) warnings() (int, []string) { return j.skipped, j.first }

func (j *jsonReader) warn(msg string) {
	j.skipped++
	if len(j.first) < 20 {
		j.first = append(j.first, msg)
	}
}

func (j *jsonReader) Next(ev *event.Event) error {
	for {
		// Each value gets a fresh budget; the decoder's buffered look-ahead is
		// at most one read, so this bounds memory per value.
		j.budget.left = MaxJSONValue
		if !j.started {
			j.started = true
			isArray, err := startsWithArray(j.br)
			if err != nil {
				return err
			}
			if isArray {
				if _, err := j.dec.Token(); err != nil {
					return fmt.Errorf("%s: %w", j.src, err)
				}
				j.inArray = true
			}
		}
		if j.inArray && !j.dec.More() {
			return io.EOF
		}
		var m map[string]any
		err := j.dec.Decode(&m)
		if err == io.EOF {
			return io.EOF
		}
		j.n++
		if err != nil {
			if errors.Is(err, ErrValueTooLarge) {
				j.warn(fmt.Sprintf("value %d: larger than %d bytes; rest of file skipped", j.n, MaxJSONValue))
				return io.EOF
			}
			var se *json.SyntaxError
			if errors.As(err, &se) {
				j.warn(fmt.Sprintf("value %d at byte %d: %v; rest of file skipped", j.n, se.Offset, se))
				return io.EOF
			}
			// A value of the wrong type (e.g. a bare number): skip it.
			j.warn(fmt.Sprintf("value %d: %v", j.n, err))
			continue
		}
		if !winevent.FromJSON(m, ev) {
			flattenJSON(m, ev)
		} else if id, ok := ev.Get("EventRecordID"); ok {
			if n, err := strconv.ParseUint(id, 10, 64); err == nil {
				ev.Record = n
			}
		}
		if ev.Record == 0 {
			ev.Record = j.n
		}
		ev.Source = j.src
		return nil
	}
}

// The first present of these fields dates a generic JSON event.
var timeFields = []string{"@timestamp", "timestamp", "time", "UtcTime", "TimeCreated", "EventTime", "ts"}

func flattenJSON(m map[string]any, ev *event.Event) {
	ev.Reset()
	if ls, ok := m["logsource"].(map[string]any); ok {
		if p, ok := ls["product"].(string); ok {
			ev.Product = p
		}
		if s, ok := ls["service"].(string); ok {
			ev.Services = []string{s}
		}
		if c, ok := ls["category"].(string); ok {
			ev.Categories = []string{c}
		}
	}
	walkGeneric(ev, "", m, 0)
	for _, name := range timeFields {
		if v, ok := ev.Get(name); ok {
			if t, ok := parseAnyTime(v); ok {
				ev.Time = t
				break
			}
		}
	}
}

func walkGeneric(ev *event.Event, prefix string, v any, depth int) {
	if depth > MaxJSONDepth {
		b, _ := json.Marshal(v)
		ev.Add(prefix, string(b))
		return
	}
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			if depth == 0 && k == "logsource" {
				continue
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			name := k
			if prefix != "" {
				name = prefix + "." + k
			}
			walkGeneric(ev, name, x[k], depth+1)
		}
	case []any:
		for _, e := range x {
			walkGeneric(ev, prefix, e, depth+1)
		}
	case string:
		ev.Add(prefix, x)
	case json.Number:
		ev.Add(prefix, x.String())
	case bool:
		ev.Add(prefix, strconv.FormatBool(x))
	case nil:
		// null: the field is absent
	}
}

func parseAnyTime(s string) (time.Time, bool) {
	if t, ok := winevent.ParseTime(s); ok {
		return t, true
	}
	for _, l := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(l, strings.TrimSpace(s)); err == nil {
			return t.UTC(), true
		}
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil && n > 1e9 && n < 1e11 {
		sec := int64(n)
		return time.Unix(sec, int64((n-float64(sec))*1e9)).UTC(), true
	}
	return time.Time{}, false
}

// startsWithArray peeks past white space and a byte-order mark.
func startsWithArray(br *bufio.Reader) (bool, error) {
	for i := 0; ; i++ {
		b, err := br.Peek(i + 1)
		if err != nil {
			if err == io.EOF {
				return false, nil
			}
			return false, err
		}
		switch c := b[i]; c {
		case ' ', '\t', '\r', '\n', 0xef, 0xbb, 0xbf:
			if i > 4096 {
				return false, nil
			}
			continue
		default:
			return c == '[', nil
		}
	}
}
