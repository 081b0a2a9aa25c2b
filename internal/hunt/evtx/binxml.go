package evtx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/hunt/winevent"
)

// Binary XML tokens; 0x40 on some of them means "more data follows".
const (
	tokEOF           = 0x00
	tokOpenStart     = 0x01
	tokCloseStart    = 0x02
	tokCloseEmpty    = 0x03
	tokEnd           = 0x04
	tokValue         = 0x05
	tokAttr          = 0x06
	tokCDATA         = 0x07
	tokCharRef       = 0x08
	tokEntityRef     = 0x09
	tokPITarget      = 0x0a
	tokPIData        = 0x0b
	tokTemplate      = 0x0c
	tokNormalSubst   = 0x0d
	tokOptionalSubst = 0x0e
	tokFragment      = 0x0f
	tokMoreBit       = 0x40
)

// Limits that keep hostile input bounded.
const (
	maxNesting    = 16      // nested template instances / Binary XML values
	maxElements   = 64      // element nesting depth
	maxOpsPerRec  = 1 << 18 // instructions executed per record
	maxOutPerRec  = 4 << 20 // bytes of rendered text per record
	maxInternSize = 1 << 14 // distinct names kept interned
	maxSubsts     = 1 << 12 // substitution values per template instance
	maxNameChars  = 1 << 12 // characters in one element or attribute name
)

var (
	errTruncated = errors.New("binary XML runs past its data")
	errDepth     = errors.New("binary XML nested too deeply")
	errBudget    = errors.New("binary XML expands beyond the per-record limit")
)

// opKind is one instruction of a compiled Binary XML stream.
type opKind uint8

const (
	opStart      opKind = iota + 1 // open element s
	opAttr                         // start attribute s; value ops follow
	opCloseStart                   // end of the attribute list
	opEnd                          // close element
	opText                         // literal text s
	opSubst                        // substitution value id (optional if flag)
	opInstance                     // template instance: definition at a, values at b
)

type op struct {
	kind     opKind
	optional bool
	vtype    uint8
	id       uint16
	a, b     uint32
	s        string
}

// tmpl is a compiled template definition: ops[start:end] of parser.tplOps.
type tmpl struct {
	start, end int32
	err        error
}

// val is one substitution value of a template instance: its type and where
// its bytes are in the chunk.
type val struct {
	vtype uint8
	off   uint32
	size  uint32
}

// parser compiles and executes the Binary XML of the records of one chunk.
type parser struct {
	chunk     []byte
	templates map[uint32]tmpl   // by definition offset, for this chunk
	tplOps    []op              // compiled template bodies of this chunk
	names     map[uint32]string // names by chunk offset, for this chunk
	intern    map[string]string // names across chunks
	scratch   []op              // compiled non-template streams (stack)
	vals      []val             // substitution values (stack)
	f         winevent.Flattener
	text      []byte // rendering scratch
	attr      []byte // attribute value being assembled
	ops       int    // instructions executed for this record
	out       int    // bytes rendered for this record
}

func (p *parser) init() {
	p.templates = make(map[uint32]tmpl)
	p.names = make(map[uint32]string)
	p.intern = make(map[string]string)
}

// reset prepares for a new chunk: cached templates and names refer to
// offsets of the old one.
func (p *parser) reset(chunk []byte) {
	p.chunk = chunk
	clear(p.templates)
	clear(p.names)
	clear(p.tplOps)
	p.tplOps = p.tplOps[:0]
}

// record parses the Binary XML in chunk[start:end] into ev.
func (p *parser) record(ev *event.Event, start, end int) error {
	p.f.Reset()
	p.ops, p.out = 0, 0
	base := len(p.scratch)
	ops, _, err := p.compile(p.scratch, start, end, false, false)
	p.scratch = ops // nested compiles append after these while they run
	if err == nil {
		err = p.exec(ops[base:], nil, 0)
	}
	p.scratch = p.scratch[:base]
	if err != nil {
		return err
	}
	if p.f.Depth() != 0 {
		return errors.New("unclosed element")
	}
	p.f.Finish(ev)
	if len(ev.Fields) == 0 {
		return errors.New("record has no fields")
	}
	return nil
}

// compile appends the instructions for the token stream in chunk[pos:end] to
// ops. It stops at an end-of-file token or at end. In a template definition
// (inTemplate) substitutions are allowed and template instances are not.
// noDep is set for a Binary XML substitution value, whose element starts have
// no dependency identifier.
func (p *parser) compile(ops []op, pos, end int, inTemplate, noDep bool) ([]op, int, error) {
	c := p.chunk
	if end > len(c) {
		return ops, pos, errTruncated
	}
	need := func(n int) error {
		if n < 0 || end-pos < n {
			return errTruncated
		}
		return nil
	}
	for pos < end {
		tok := c[pos]
		switch tok &^ tokMoreBit {
		case tokEOF:
			return ops, pos + 1, nil
		case tokOpenStart:
			hdr := 9
			if !noDep {
				hdr = 11
			}
			if err := need(hdr); err != nil {
				return ops, pos, err
			}
			pos += hdr
			nameOff := binary.LittleEndian.Uint32(c[pos-4:])
			name, next, err := p.name(nameOff, pos, end)
			if err != nil {
				return ops, pos, err
			}
			pos = next
			if tok&tokMoreBit != 0 {
				if err := need(4); err != nil {
					return ops, pos, err
				}
				pos += 4 // attribute list size
			}
			ops = append(ops, op{kind: opStart, s: name})
		case tokCloseStart:
			pos++
			ops = append(ops, op{kind: opCloseStart})
		case tokCloseEmpty, tokEnd:
			pos++
			ops = append(ops, op{kind: opEnd})
		case tokValue:
			if err := need(4); err != nil {
				return ops, pos, err
			}
			vtype := c[pos+1]
			if vtype != typeString {
				return ops, pos, fmt.Errorf("value token of type %#x", vtype)
			}
			n := int(binary.LittleEndian.Uint16(c[pos+2:])) * 2
			pos += 4
			if err := need(n); err != nil {
				return ops, pos, err
			}
			p.text = appendUTF16(p.text[:0], c[pos:pos+n], false)
			pos += n
			ops = append(ops, op{kind: opText, s: string(p.text)})
		case tokAttr:
			if err := need(5); err != nil {
				return ops, pos, err
			}
			nameOff := binary.LittleEndian.Uint32(c[pos+1:])
			pos += 5
			name, next, err := p.name(nameOff, pos, end)
			if err != nil {
				return ops, pos, err
			}
			pos = next
			ops = append(ops, op{kind: opAttr, s: name})
		case tokCDATA, tokPIData:
			if err := need(3); err != nil {
				return ops, pos, err
			}
			n := int(binary.LittleEndian.Uint16(c[pos+1:])) * 2
			pos += 3
			if err := need(n); err != nil {
				return ops, pos, err
			}
			if tok&^tokMoreBit == tokCDATA {
				p.text = appendUTF16(p.text[:0], c[pos:pos+n], false)
				ops = append(ops, op{kind: opText, s: string(p.text)})
			}
			pos += n
		case tokCharRef:
			if err := need(3); err != nil {
				return ops, pos, err
			}
			r := rune(binary.LittleEndian.Uint16(c[pos+1:]))
			pos += 3
			ops = append(ops, op{kind: opText, s: string(r)})
		case tokEntityRef, tokPITarget:
			if err := need(5); err != nil {
				return ops, pos, err
			}
			nameOff := binary.LittleEndian.Uint32(c[pos+1:])
			pos += 5
			name, next, err := p.name(nameOff, pos, end)
			if err != nil {
				return ops, pos, err
			}
			pos = next
			if tok&^tokMoreBit == tokEntityRef {
				ops = append(ops, op{kind: opText, s: entity(name)})
			}
		case tokTemplate:
			if inTemplate {
				return ops, pos, errors.New("template instance inside a template definition")
			}
			if err := need(10); err != nil {
				return ops, pos, err
			}
			defOff := binary.LittleEndian.Uint32(c[pos+6:])
			pos += 10
			if int(defOff) == pos { // the definition follows inline
				if err := need(24); err != nil {
					return ops, pos, err
				}
				size := int(binary.LittleEndian.Uint32(c[pos+20:]))
				if err := need(24 + size); err != nil {
					return ops, pos, err
				}
				pos += 24 + size
			}
			dataOff := pos
			if err := need(4); err != nil {
				return ops, pos, err
			}
			n := int(binary.LittleEndian.Uint32(c[pos:]))
			if n > maxSubsts {
				return ops, pos, fmt.Errorf("%d substitution values", n)
			}
			pos += 4
			if err := need(4 * n); err != nil {
				return ops, pos, err
			}
			total := 0
			for i := range n {
				total += int(binary.LittleEndian.Uint16(c[pos+4*i:]))
			}
			pos += 4 * n
			if err := need(total); err != nil {
				return ops, pos, err
			}
			pos += total
			ops = append(ops, op{kind: opInstance, a: defOff, b: uint32(dataOff)})
		case tokNormalSubst, tokOptionalSubst:
			if !inTemplate {
				return ops, pos, errors.New("substitution outside a template")
			}
			if err := need(4); err != nil {
				return ops, pos, err
			}
			ops = append(ops, op{
				kind:     opSubst,
				optional: tok == tokOptionalSubst,
				id:       binary.LittleEndian.Uint16(c[pos+1:]),
				vtype:    c[pos+3],
			})
			pos += 4
		case tokFragment:
			if err := need(4); err != nil {
				return ops, pos, err
			}
			pos += 4
		default:
			return ops, pos, fmt.Errorf("unknown token %#02x at %#x", tok, pos)
		}
	}
	return ops, pos, nil
}

// name returns the name at chunk offset off. When the name is stored inline
// (off == pos) it also returns the position after it; otherwise pos.
func (p *parser) name(off uint32, pos, end int) (string, int, error) {
	c := p.chunk
	o := int(off)
	if o < 0 || o+8 > len(c) {
		return "", pos, fmt.Errorf("name offset %#x outside the chunk", off)
	}
	n := int(binary.LittleEndian.Uint16(c[o+6:]))
	if n > maxNameChars || o+8+2*n > len(c) {
		return "", pos, fmt.Errorf("name at %#x too long", off)
	}
	if o == pos {
		size := 8 + 2*n + 2 // header, characters, terminating NUL
		if pos+size > end {
			return "", pos, errTruncated
		}
		pos += size
	}
	if s, ok := p.names[off]; ok {
		return s, pos, nil
	}
	p.text = appendUTF16(p.text[:0], c[o+8:o+8+2*n], false)
	s, ok := p.intern[string(p.text)]
	if !ok {
		s = string(p.text)
		if len(p.intern) < maxInternSize {
			p.intern[s] = s
		}
	}
	p.names[off] = s
	return s, pos, nil
}

// template returns the compiled definition at chunk offset off, compiling it
// on first use in this chunk.
func (p *parser) template(off uint32) ([]op, error) {
	if t, ok := p.templates[off]; ok {
		return p.tplOps[t.start:t.end], t.err
	}
	t := tmpl{start: int32(len(p.tplOps))}
	o := int(off)
	if o < chunkHeaderSize || o+24 > len(p.chunk) {
		t.err = fmt.Errorf("template definition offset %#x outside the chunk", off)
	} else {
		size := int(binary.LittleEndian.Uint32(p.chunk[o+20:]))
		if size > len(p.chunk)-o-24 {
			t.err = fmt.Errorf("template definition at %#x runs past the chunk", off)
		} else {
			var ops []op
			ops, _, t.err = p.compile(p.tplOps, o+24, o+24+size, true, false)
			if t.err == nil {
				p.tplOps = ops
			} else {
				p.tplOps = ops[:t.start]
			}
		}
	}
	t.end = int32(len(p.tplOps))
	p.templates[off] = t
	return p.tplOps[t.start:t.end], t.err
}

// exec runs ops with the substitution values vals, feeding the flattener.
func (p *parser) exec(ops []op, vals []val, depth int) error {
	if depth > maxNesting {
		return errDepth
	}
	var attrName string
	inAttr, attrSet := false, false
	endAttr := func() {
		if inAttr && attrSet {
			p.f.Attr(attrName, p.attr)
		}
		inAttr, attrSet = false, false
	}
	for i := range ops {
		o := &ops[i]
		p.ops++
		if p.ops > maxOpsPerRec || p.out > maxOutPerRec {
			return errBudget
		}
		switch o.kind {
		case opStart:
			endAttr()
			if p.f.Depth() >= maxElements {
				return errDepth
			}
			p.f.Start(o.s)
		case opAttr:
			endAttr()
			attrName, inAttr = o.s, true
			p.attr = p.attr[:0]
		case opCloseStart:
			endAttr()
		case opEnd:
			endAttr()
			if p.f.Depth() == 0 {
				return errors.New("end of an element that was not opened")
			}
			p.f.End()
		case opText:
			p.out += len(o.s)
			if inAttr {
				p.attr = append(p.attr, o.s...)
				attrSet = true
			} else {
				p.f.TextString(o.s)
			}
		case opSubst:
			if int(o.id) >= len(vals) {
				if !inAttr {
					p.f.Null()
				}
				continue
			}
			if err := p.subst(vals[o.id], inAttr, &attrSet, depth); err != nil {
				return err
			}
		case opInstance:
			endAttr()
			if err := p.instance(o.a, int(o.b), depth+1); err != nil {
				return err
			}
		}
	}
	endAttr()
	return nil
}

// subst renders one substitution value into the current attribute or element.
func (p *parser) subst(v val, inAttr bool, attrSet *bool, depth int) error {
	data := p.chunk[v.off : v.off+v.size]
	switch {
	case v.vtype == typeNull:
		if !inAttr {
			p.f.Null()
		}
		return nil
	case v.vtype == typeBinXML:
		if inAttr || len(data) == 0 {
			return nil
		}
		// Compiling counts against the output budget: a template could
		// name the same large value many times.
		p.out += len(data)
		if p.out > maxOutPerRec {
			return errBudget
		}
		base := len(p.scratch)
		ops, _, err := p.compile(p.scratch, int(v.off), int(v.off+v.size), false, true)
		p.scratch = ops
		if err == nil {
			err = p.exec(ops[base:], nil, depth+1)
		}
		p.scratch = p.scratch[:base]
		if err != nil {
			return fmt.Errorf("binary XML value: %w", err)
		}
		return nil
	case v.vtype&typeArray != 0 && !inAttr:
		first := true
		return forEachItem(v.vtype, data, func(item []byte) error {
			if !first {
				p.f.ArraySep()
			}
			first = false
			var err error
			p.text, err = appendValue(p.text[:0], v.vtype&^typeArray, item)
			p.out += len(p.text)
			p.f.Text(p.text)
			return err
		})
	}
	var err error
	if inAttr {
		n := len(p.attr)
		p.attr, err = appendValue(p.attr, v.vtype, data)
		p.out += len(p.attr) - n
		*attrSet = true
		return err
	}
	p.text, err = appendValue(p.text[:0], v.vtype, data)
	p.out += len(p.text)
	p.f.Text(p.text)
	return err
}

// instance executes the template instance whose definition is at chunk
// offset defOff and whose substitution values start at dataOff.
func (p *parser) instance(defOff uint32, dataOff int, depth int) error {
	if depth > maxNesting {
		return errDepth
	}
	ops, err := p.template(defOff)
	if err != nil {
		return err
	}
	// compile checked that the descriptors and values lie inside the data.
	c := p.chunk
	n := int(binary.LittleEndian.Uint32(c[dataOff:]))
	base := len(p.vals)
	off := uint32(dataOff + 4 + 4*n)
	for i := range n {
		d := c[dataOff+4+4*i:]
		size := uint32(binary.LittleEndian.Uint16(d))
		p.vals = append(p.vals, val{vtype: d[2], off: off, size: size})
		off += size
	}
	vals := p.vals[base:]
	err = p.exec(ops, vals, depth)
	p.vals = p.vals[:base]
	return err
}

func entity(name string) string {
	switch name {
	case "lt":
		return "<"
	case "gt":
		return ">"
	case "amp":
		return "&"
	case "quot":
		return `"`
	case "apos":
		return "'"
	}
	return "&" + name + ";"
}

// appendUTF16 appends UTF-16LE b as UTF-8, stopping at a NUL when stopAtNUL.
// Unpaired surrogates become U+FFFD.
func appendUTF16(dst, b []byte, stopAtNUL bool) []byte {
	for i := 0; i+1 < len(b); i += 2 {
		u := uint16(b[i]) | uint16(b[i+1])<<8
		switch {
		case u == 0 && stopAtNUL:
			return dst
		case u < utf8.RuneSelf:
			dst = append(dst, byte(u))
		case u >= 0xd800 && u < 0xdc00 && i+3 < len(b):
			u2 := uint16(b[i+2]) | uint16(b[i+3])<<8
			if u2 >= 0xdc00 && u2 < 0xe000 {
				r := (rune(u)-0xd800)<<10 | (rune(u2) - 0xdc00) + 0x10000
				dst = utf8.AppendRune(dst, r)
				i += 2
			} else {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			}
		default:
			dst = utf8.AppendRune(dst, rune(u)) // lone surrogates become U+FFFD
		}
	}
	return dst
}
