package evtx

import (
	"encoding/binary"
	"hash/crc32"
	"unicode/utf16"
)

// This file holds a small EVTX writer for tests and fuzz seeds. It writes
// the structures described in format.md from scratch: a file header, chunks
// whose header has a common-string table entry and correct CRCs, and records
// that instantiate one template defined inline in the first record.

// tv is one substitution value for the test template.
type tv struct {
	typ  uint8
	data []byte
}

func tvString(s string) tv {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	return tv{typeString, b}
}

func tvU16(v uint16) tv { return tv{typeUint16, binary.LittleEndian.AppendUint16(nil, v)} }
func tvU64(v uint64) tv { return tv{typeUint64, binary.LittleEndian.AppendUint64(nil, v)} }
func tvHex64(v uint64) tv {
	return tv{typeHexInt64, binary.LittleEndian.AppendUint64(nil, v)}
}
func tvFileTime(unixSec int64, hundredNs int64) tv {
	ft := uint64((unixSec+11644473600)*10_000_000 + hundredNs)
	return tv{typeFileTime, binary.LittleEndian.AppendUint64(nil, ft)}
}
func tvNull() tv { return tv{typeNull, nil} }

// tvSID builds S-1-5-21-<subs…>.
func tvSID(subs ...uint32) tv {
	b := []byte{1, byte(len(subs)), 0, 0, 0, 0, 0, 5}
	for _, s := range subs {
		b = binary.LittleEndian.AppendUint32(b, s)
	}
	return tv{typeSID, b}
}

func tvStrings(ss ...string) tv {
	var b []byte
	for _, s := range ss {
		b = append(b, tvString(s).data...)
		b = append(b, 0, 0)
	}
	return tv{typeString | typeArray, b}
}

// chunkWriter writes one chunk. Offsets in Binary XML are chunk offsets.
type chunkWriter struct {
	b     []byte
	names map[string]uint32 // name → offset of its name structure
	tmpl  uint32            // offset of the template definition, once written
}

func newChunkWriter() *chunkWriter {
	return &chunkWriter{b: make([]byte, chunkHeaderSize), names: map[string]uint32{}}
}

func (w *chunkWriter) u8(v byte)    { w.b = append(w.b, v) }
func (w *chunkWriter) u16(v uint16) { w.b = binary.LittleEndian.AppendUint16(w.b, v) }
func (w *chunkWriter) u32(v uint32) { w.b = binary.LittleEndian.AppendUint32(w.b, v) }

// name writes a name offset; the first use of a name stores it inline, and
// later uses point back at it (as Windows does through its string table).
func (w *chunkWriter) name(s string) {
	if off, ok := w.names[s]; ok {
		w.u32(off)
		return
	}
	off := uint32(len(w.b) + 4)
	w.names[s] = off
	w.u32(off)
	w.u32(0) // next string in the hash bucket
	w.u16(0) // hash (not checked by readers)
	u := utf16.Encode([]rune(s))
	w.u16(uint16(len(u)))
	for _, c := range u {
		w.u16(c)
	}
	w.u16(0)
	if len(w.names) == 1 { // one common string table entry
		binary.LittleEndian.PutUint32(w.b[128:], off)
	}
}

func (w *chunkWriter) open(name string, attrs bool) {
	if attrs {
		w.u8(tokOpenStart | tokMoreBit)
	} else {
		w.u8(tokOpenStart)
	}
	w.u16(0xffff) // dependency identifier
	w.u32(0)      // data size (not needed by readers)
	w.name(name)
	if attrs {
		w.u32(0) // attribute list size
	}
}

func (w *chunkWriter) attr(name string, more bool) {
	if more {
		w.u8(tokAttr | tokMoreBit)
	} else {
		w.u8(tokAttr)
	}
	w.name(name)
}

func (w *chunkWriter) text(s string) {
	w.u8(tokValue)
	w.u8(typeString)
	u := utf16.Encode([]rune(s))
	w.u16(uint16(len(u)))
	for _, c := range u {
		w.u16(c)
	}
}

func (w *chunkWriter) subst(id uint16, typ uint8, optional bool) {
	if optional {
		w.u8(tokOptionalSubst)
	} else {
		w.u8(tokNormalSubst)
	}
	w.u16(id)
	w.u8(typ)
}

// leaf writes <name>%id</name>.
func (w *chunkWriter) leaf(name string, id uint16, typ uint8) {
	w.open(name, false)
	w.u8(tokCloseStart)
	w.subst(id, typ, true)
	w.u8(tokEnd)
}

// data writes <Data Name="name">%id</Data>.
func (w *chunkWriter) data(name string, id uint16, typ uint8) {
	w.open("Data", true)
	w.attr("Name", false)
	w.text(name)
	w.u8(tokCloseStart)
	w.subst(id, typ, true)
	w.u8(tokEnd)
}

// emptyAttrElem writes <name attr="%id"/>.
func (w *chunkWriter) emptyAttrElem(name, attr string, id uint16, typ uint8) {
	w.open(name, true)
	w.attr(attr, false)
	w.subst(id, typ, true)
	w.u8(tokCloseEmpty)
}

// templateBody writes the test template's Binary XML (fragment to EOF).
func (w *chunkWriter) templateBody() {
	w.u8(tokFragment)
	w.u8(1)
	w.u8(1)
	w.u8(0)
	w.open("Event", true)
	w.attr("xmlns", false)
	w.text("http://schemas.microsoft.com/win/2004/08/events/event")
	w.u8(tokCloseStart)
	w.open("System", false)
	w.u8(tokCloseStart)
	w.emptyAttrElem("Provider", "Name", 0, typeString)
	w.leaf("EventID", 1, typeUint16)
	w.emptyAttrElem("TimeCreated", "SystemTime", 2, typeFileTime)
	w.leaf("EventRecordID", 3, typeUint64)
	w.leaf("Channel", 4, typeString)
	w.leaf("Computer", 5, typeString)
	w.emptyAttrElem("Security", "UserID", 6, typeSID)
	w.u8(tokEnd) // System
	w.open("EventData", false)
	w.u8(tokCloseStart)
	w.data("Image", 7, typeString)
	w.data("Flags", 8, typeHexInt64)
	w.data("Gone", 9, typeNull)
	w.data("Items", 10, typeString|typeArray)
	// <Data>a &amp; b&#33;<![CDATA[c]]></Data>
	w.open("Data", false)
	w.u8(tokCloseStart)
	w.u8(tokValue | tokMoreBit)
	w.u8(typeString)
	w.u16(4)
	for _, c := range "a " {
		w.u16(uint16(c))
	}
	w.u16('&') // value text is raw; the entity below is the escaped form
	w.u16(' ')
	w.u8(tokEntityRef | tokMoreBit)
	w.name("amp")
	w.text(" b")
	w.u8(tokCharRef | tokMoreBit)
	w.u16('!')
	w.u8(tokCDATA)
	w.u16(1)
	w.u16('c')
	w.u8(tokEnd) // Data
	w.u8(tokEnd) // EventData
	w.u8(tokEnd) // Event
	w.u8(tokEOF)
}

// record appends one event record instantiating the template with vals.
func (w *chunkWriter) record(id uint64, vals []tv) {
	start := len(w.b)
	w.b = append(w.b, recordMagic...)
	w.u32(0) // size, patched below
	w.b = binary.LittleEndian.AppendUint64(w.b, id)
	w.b = binary.LittleEndian.AppendUint64(w.b, 0) // written time
	w.u8(tokFragment)
	w.u8(1)
	w.u8(1)
	w.u8(0)
	w.u8(tokTemplate)
	w.u8(1)
	w.u32(0x5eed) // template id
	if w.tmpl == 0 {
		w.tmpl = uint32(len(w.b) + 4)
		w.u32(w.tmpl)
		w.u32(0)                               // next definition
		w.b = append(w.b, make([]byte, 16)...) // GUID
		sizeAt := len(w.b)
		w.u32(0)
		w.templateBody()
		binary.LittleEndian.PutUint32(w.b[sizeAt:], uint32(len(w.b)-sizeAt-4))
	} else {
		w.u32(w.tmpl)
	}
	w.u32(uint32(len(vals)))
	for _, v := range vals {
		w.u16(uint16(len(v.data)))
		w.u8(v.typ)
		w.u8(0)
	}
	for _, v := range vals {
		w.b = append(w.b, v.data...)
	}
	w.u8(tokEOF)
	size := uint32(len(w.b) - start + 4)
	w.u32(size)
	binary.LittleEndian.PutUint32(w.b[start+4:], size)
}

// finish fills in the chunk header and returns the 64 KiB chunk.
func (w *chunkWriter) finish(firstID, lastID uint64, lastRecord int) []byte {
	free := len(w.b)
	c := make([]byte, chunkSize)
	copy(c, w.b)
	copy(c, chunkMagic)
	le := binary.LittleEndian
	le.PutUint64(c[8:], firstID)
	le.PutUint64(c[16:], lastID)
	le.PutUint64(c[24:], firstID)
	le.PutUint64(c[32:], lastID)
	le.PutUint32(c[40:], 128)
	le.PutUint32(c[44:], uint32(lastRecord))
	le.PutUint32(c[48:], uint32(free))
	le.PutUint32(c[52:], crc32.ChecksumIEEE(c[chunkHeaderSize:free]))
	crc := crc32.ChecksumIEEE(c[:120])
	crc = crc32.Update(crc, crc32.IEEETable, c[128:chunkHeaderSize])
	le.PutUint32(c[124:], crc)
	return c
}

// testValues returns the substitution values of test record n.
func testValues(n int) []tv {
	return []tv{
		tvString("Test-Provider"),
		tvU16(uint16(4687 + n)),
		tvFileTime(1784297914, 722130),
		tvU64(uint64(100 + n)),
		tvString("Security"),
		tvString("host"),
		tvSID(21, 1, 1001),
		tvString(`C:\Windows\System32\cmd.exe `),
		tvHex64(0x8020000000000000),
		tvNull(),
		tvStrings("x", "y"),
	}
}

// buildChunk returns one chunk holding records ids first..first+n-1.
func buildChunk(first uint64, n int) []byte {
	w := newChunkWriter()
	last := 0
	for i := range n {
		last = len(w.b)
		w.record(first+uint64(i), testValues(i))
	}
	return w.finish(first, first+uint64(n)-1, last)
}

// buildFile returns an EVTX file with the given chunks.
func buildFile(chunks ...[]byte) []byte {
	h := make([]byte, fileHeaderSize)
	copy(h, fileMagic)
	le := binary.LittleEndian
	le.PutUint64(h[16:], uint64(len(chunks)-1))
	le.PutUint32(h[32:], 128)
	le.PutUint16(h[36:], 1)
	le.PutUint16(h[38:], 3)
	le.PutUint16(h[40:], fileHeaderSize)
	le.PutUint16(h[42:], uint16(len(chunks)))
	le.PutUint32(h[124:], crc32.ChecksumIEEE(h[:120]))
	for _, c := range chunks {
		h = append(h, c...)
	}
	return h
}
