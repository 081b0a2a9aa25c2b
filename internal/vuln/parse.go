package vuln

import (
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"
)

// JSONError turns a decoding error of a JSON value that starts at byte
// base of file (or of its zip member) into a FileError with the offset and,
// for a type mismatch, the path.
func JSONError(file, member string, base int64, err error) *FileError {
	fe := &FileError{File: file, Member: member, Offset: -1, Err: err}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		fe.Offset = base + se.Offset
	case errors.As(err, &te):
		fe.Offset = base + te.Offset
		if te.Field != "" {
			fe.Path = "$." + te.Field
		}
		fe.Err = errors.New("expected " + kindName(te.Type) + ", found " + te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		fe.Err = errors.New("unexpected end of the JSON text")
	}
	return fe
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Pointer:
		return kindName(t.Elem())
	case reflect.Interface:
		return "a value"
	}
	return "a number"
}

// InvalidUTF8 returns the offset of the first byte of b that is not valid
// UTF-8, or -1.
func InvalidUTF8(b []byte) int64 {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return int64(i)
		}
		i += n
	}
	return -1
}

// CleanText makes s one line of at most max bytes: control and format
// characters (bidi, zero-width) become spaces, runs of space shrink to
// one, a cut ends in "…".
func CleanText(s string, max int) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.IsSpace(r) || r == utf8.RuneError {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		if b.Len()+utf8.RuneLen(r) > max {
			return strings.TrimSpace(b.String()) + "…"
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Name reports whether s is usable as an advisory id, alias or package
// name: 1 to 200 printable ASCII bytes without spaces.
func Name(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
