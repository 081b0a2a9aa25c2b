package wire

import "unicode/utf8"

// scan is the cheap byte pass that runs before any JSON decoding. It refuses
// nesting deeper than maxDepth, the literal null anywhere, and \u escapes that
// would decode to a lone UTF-16 surrogate (encoding/json would silently turn
// those into U+FFFD). Anything else that is not JSON is left to the decoder.
// The body must already be valid UTF-8.
func scan(b []byte, maxDepth int) *Error {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b); i++ {
				c := b[i]
				if c == '"' {
					break
				}
				if c != '\\' {
					continue
				}
				i++
				if i >= len(b) || b[i] != 'u' {
					continue
				}
				r, ok := hex4(b, i+1)
				if !ok {
					continue // a syntax error the decoder reports
				}
				i += 4
				switch {
				case r >= 0xDC00 && r <= 0xDFFF:
					return errorf(CodeInvalidUTF8, "lone low surrogate escape \\u%04X at byte %d", r, i-5)
				case r >= 0xD800 && r <= 0xDBFF:
					if i+6 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
						if lo, ok := hex4(b, i+3); ok && lo >= 0xDC00 && lo <= 0xDFFF {
							i += 6
							continue
						}
					}
					return errorf(CodeInvalidUTF8, "lone high surrogate escape \\u%04X at byte %d", r, i-5)
				}
			}
		case '[', '{':
			depth++
			if depth > maxDepth {
				return errorf(CodeTooDeep, "JSON nests deeper than %d levels", maxDepth)
			}
		case ']', '}':
			depth--
		case 'n':
			return errorf(CodeBadJSON, "null at byte %d: null is not allowed (omit the key instead)", i)
		}
	}
	return nil
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// UnmarshalJSON reads [["name","value"],...], for callers that embed Fields
// in their own JSON; Decode does not use it.
func (f *Fields) UnmarshalJSON(b []byte) error {
	p := parser{b: b}
	out, err := p.fields()
	if err == nil && p.next() != 0 {
		err = p.syntax("the end of fields")
	}
	if err != nil {
		return err
	}
	*f = out
	return nil
}

// MarshalJSON writes the pairs as [["name","value"],...].
func (f Fields) MarshalJSON() ([]byte, error) {
	return AppendFieldPairs(nil, f), nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. s must be valid UTF-8. Only what
// JSON requires is escaped (quote, backslash, control characters), plus
// U+2028 and U+2029 so the output is also safe inside JavaScript.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
