package sqlite

import (
	"hash/maphash"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Full-text search. Vigil tokenizes in Go, not in SQLite: a token is a
// maximal run of letters and numbers, lower-cased, cut to maxToken bytes.
// Each event's text column holds its distinct tokens separated by spaces, and
// the FTS5 table uses the simple "ascii" tokenizer with detail=none, which
// then sees exactly these tokens. A query is the AND of its tokens, each
// quoted, so user text can never form FTS5 syntax (OR, NEAR, *, ^, column
// filters): searching `"a OR b*` finds events holding the tokens a, or and b.

// maxToken bounds an indexed token in bytes; longer ones (base64 blobs) are
// cut, at index and at query time alike.
const maxToken = 64

// tokenizer splits values into tokens. The zero value is ready; it is not
// safe for concurrent use.
type tokenizer struct {
	seed maphash.Seed
	seen hashSet
	tok  []byte
}

// reset forgets the tokens seen so far (call once per event).
func (z *tokenizer) reset() {
	if z.seen.slots == nil {
		z.seed = maphash.MakeSeed()
	}
	z.seen.reset()
}

// appendTokens appends the tokens of s not seen since reset to text,
// separated by spaces. Duplicates are found by a 64-bit hash of the token
// (seeded per process, so no input can choose collisions to hide a token).
func (z *tokenizer) appendTokens(text []byte, s string) []byte {
	z.each(s, func(tok []byte) {
		if !z.seen.add(maphash.Bytes(z.seed, tok)) {
			return
		}
		if len(text) > 0 {
			text = append(text, ' ')
		}
		text = append(text, tok...)
	})
	return text
}

// hashSet is a set of 64-bit hashes: open addressing with linear probing,
// 0 marking a free slot (a hash of 0 is stored as 1). It stays at most half
// full. A block's distinct tokens number in the thousands, which a Go map
// handled at several times the cost.
type hashSet struct {
	slots []uint64
	n     int
}

func (s *hashSet) reset() {
	if s.slots == nil {
		s.slots = make([]uint64, 1024)
	}
	if s.n > 0 {
		clear(s.slots)
		s.n = 0
	}
}

// add inserts h and reports whether it was new.
func (s *hashSet) add(h uint64) bool {
	if h == 0 {
		h = 1
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return false
		case 0:
			s.slots[i] = h
			s.n++
			if 2*s.n > len(s.slots) {
				s.grow()
			}
			return true
		}
	}
}

func (s *hashSet) grow() {
	old := s.slots
	s.slots = make([]uint64, 2*len(old))
	mask := uint64(len(s.slots) - 1)
	for _, h := range old {
		if h == 0 {
			continue
		}
		i := h & mask
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = h
	}
}

// each calls fn with every token of s, in order. The slice is reused.
func (z *tokenizer) each(s string, fn func(tok []byte)) {
	tok := z.tok[:0]
	flush := func() {
		if len(tok) > 0 {
			fn(tok)
			tok = tok[:0]
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			default:
				flush()
				continue
			}
			if len(tok) < maxToken {
				tok = append(tok, c)
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if !unicode.IsLetter(r) && !unicode.IsNumber(r) {
			flush()
			continue
		}
		r = unicode.ToLower(r)
		if len(tok)+utf8.RuneLen(r) <= maxToken {
			tok = utf8.AppendRune(tok, r)
		}
	}
	flush()
	z.tok = tok
}

// ftsQuery returns the FTS5 expression requiring every token of s, or "" if
// s has none.
func ftsQuery(s string) string {
	var z tokenizer
	var b strings.Builder
	z.each(s, func(tok []byte) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		// Tokens hold only letters and digits; the quotes make words like
		// OR, AND, NOT and NEAR plain tokens.
		b.WriteByte('"')
		b.Write(tok)
		b.WriteByte('"')
	})
	return b.String()
}
