package wire

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-edr/vigil/internal/event"
)

// ErrNotObject is returned by BatchWriter.Add for bytes that are not an
// event object as AppendEventObject writes it.
var ErrNotObject = errors.New("wire: not an event object")

// AppendEventObject appends ev as the JSON object of a version-1 EVENT
// without its "seq" key: {"time":…,"product":…,…,"fields":[…]}. It is the
// form an agent stores while the sequence number is not yet known;
// BatchWriter.Add puts the number in front without decoding anything.
//
// ev is checked as Batch.Validate would check it (time and product present,
// no empty field names or log source names), so a batch built from such
// objects is never refused for its content. Invalid UTF-8 in any string is
// replaced by U+FFFD, as encoding/json does, because a sensor's bytes (a
// command line, a file name) are what they are and the event is worth
// more than the exact invalid byte. On error dst is returned unchanged.
func AppendEventObject(dst []byte, ev *event.Event) ([]byte, error) {
	switch {
	case ev.Time.IsZero():
		return dst, errorf(CodeBadEvent, "time is missing")
	case ev.Product == "":
		return dst, errorf(CodeBadEvent, "product is missing")
	}
	for _, s := range ev.Services {
		if s == "" {
			return dst, errorf(CodeBadEvent, "empty service name")
		}
	}
	for _, s := range ev.Categories {
		if s == "" {
			return dst, errorf(CodeBadEvent, "empty category name")
		}
	}
	for j := range ev.Fields {
		if ev.Fields[j].Name == "" {
			return dst, errorf(CodeBadEvent, "field %d has an empty name", j)
		}
	}
	dst = append(dst, `{"time":"`...)
	dst = ev.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","product":`...)
	dst = AppendString(dst, ev.Product)
	if len(ev.Services) > 0 {
		dst = append(dst, `,"services":`...)
		dst = AppendStringList(dst, ev.Services)
	}
	if len(ev.Categories) > 0 {
		dst = append(dst, `,"categories":`...)
		dst = AppendStringList(dst, ev.Categories)
	}
	dst = append(dst, `,"fields":`...)
	dst = AppendFieldPairs(dst, ev.Fields)
	return append(dst, '}'), nil
}

// AppendString appends s as a JSON string: only what JSON requires is
// escaped, plus U+2028 and U+2029; invalid UTF-8 becomes U+FFFD. The
// server's stores use it for their JSON columns, so there is one encoder.
func AppendString(dst []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return appendString(dst, s)
}

// AppendStringList appends ss as a JSON array of strings (AppendString).
func AppendStringList(dst []byte, ss []string) []byte {
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendString(dst, s)
	}
	return append(dst, ']')
}

// AppendFieldPairs appends fs as [["name","value"],...], the wire's form
// of event fields (AppendString for each).
func AppendFieldPairs(dst []byte, fs []event.Field) []byte {
	dst = append(dst, '[')
	for i, f := range fs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '[')
		dst = AppendString(dst, f.Name)
		dst = append(dst, ',')
		dst = AppendString(dst, f.Value)
		dst = append(dst, ']')
	}
	return append(dst, ']')
}

// BatchWriter builds a batch body from event objects written by
// AppendEventObject, adding each one's sequence number as it goes: the
// agent's spool holds the objects, and a batch is their concatenation, so
// nothing is decoded and re-encoded on the way out. A BatchWriter is
// reusable (Reset) and not safe for concurrent use.
type BatchWriter struct {
	buf  []byte
	n    int
	last uint64
}

// Reset starts a new batch for bootEpoch, keeping the buffer.
func (w *BatchWriter) Reset(bootEpoch uint64) {
	w.buf = append(w.buf[:0], `{"v":`...)
	w.buf = strconv.AppendInt(w.buf, Version, 10)
	w.buf = append(w.buf, `,"boot_epoch":`...)
	w.buf = strconv.AppendUint(w.buf, bootEpoch, 10)
	w.buf = append(w.buf, `,"events":[`...)
	w.n, w.last = 0, 0
}

// Add appends the event object obj with sequence number seq, which must be
// above the previous one's. obj is only checked for its outer braces and a
// "time" key first (the start AppendEventObject writes); its content is
// trusted to be what AppendEventObject wrote.
func (w *BatchWriter) Add(seq uint64, obj []byte) error {
	if seq == 0 || seq <= w.last {
		return errorf(CodeBadBatch, "seq %d does not follow %d", seq, w.last)
	}
	if len(obj) < len(`{"time":""}`) || obj[len(obj)-1] != '}' || string(obj[:len(`{"time":`)]) != `{"time":` {
		return ErrNotObject
	}
	if w.n > 0 {
		w.buf = append(w.buf, ',')
	}
	w.buf = append(w.buf, `{"seq":`...)
	w.buf = strconv.AppendUint(w.buf, seq, 10)
	w.buf = append(w.buf, ',')
	w.buf = append(w.buf, obj[1:]...)
	w.n++
	w.last = seq
	return nil
}

// Len returns the number of events added since Reset.
func (w *BatchWriter) Len() int { return w.n }

// Size returns the uncompressed size of the batch so far.
func (w *BatchWriter) Size() int { return len(w.buf) + len("]}") }

// Encode closes the batch and returns its body compressed for the
// Content-Encoding enc, as Encode does. The result does not share memory
// with w. An empty batch is an error (the server refuses it).
func (w *BatchWriter) Encode(enc string) ([]byte, error) {
	if w.n == 0 {
		return nil, errorf(CodeBadBatch, "events is missing or empty")
	}
	js := append(w.buf, "]}"...)
	w.buf = js[:len(js)-2]
	out, err := compress(js, enc)
	if err == nil && len(out) > 0 && &out[0] == &js[0] {
		out = slices.Clone(out)
	}
	return out, err
}
