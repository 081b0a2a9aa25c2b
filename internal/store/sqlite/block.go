package sqlite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/klauspost/compress/zstd"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
)

// Events are stored in blocks: one row of event_blocks holds up to
// maxBlockEvents events of one agent and host, as one zstd frame. The frame
// decompresses to the payload described in schema.md ("Block payload"):
//
//	payload  = version:byte(1) count:uvarint event*
//	event    = idDelta:uvarint bootEpoch:uvarint seq:uvarint time:varint
//	           bytes:uvarint product:str services:list categories:list
//	           nfields:uvarint (name:str value:str)*
//	list     = n:uvarint str*
//	str      = len:uvarint bytes
//
// idDelta is the event's row id minus the block's id (the id of its first
// event); time is Unix nanoseconds (0 = the zero time); bytes is the event's
// retention size.

// blockVersion is the payload format written; decode accepts only it.
const blockVersion = 1

// maxBlockEvents bounds the events per block: a search decodes whole
// blocks, so they stay small enough to decode in about a millisecond.
const maxBlockEvents = 2048

// maxBlockRaw bounds a block's decompressed size when reading. Events are at
// most 256 KiB at ingest, so a real block stays far below it.
const maxBlockRaw = 1 << 30

var (
	zenc = sync.OnceValue(func() *zstd.Encoder {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(2), zstd.WithZeroFrames(true))
		if err != nil {
			panic(err) // only for invalid options
		}
		return e
	})
	zdec = sync.OnceValue(func() *zstd.Decoder {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(4), zstd.WithDecoderMaxMemory(maxBlockRaw))
		if err != nil {
			panic(err)
		}
		return d
	})
)

// blockEvent is one event as a block holds it: Record without the block's
// agent and host.
type blockEvent struct {
	id        int64
	bootEpoch uint64
	seq       uint64
	time      int64
	bytes     int64
	product   string
	services  []string
	cats      []string
	fields    []event.Field
}

// eventBytes is an event's retention size: the lengths of its strings as the
// previous (row per event) schema stored them, plus rowOverhead. It is the
// logical size, not the compressed one (schema.md, "Retention").
func eventBytes(agent, host string, ev *event.Event) int64 {
	n := len(agent) + len(host) + len(ev.Product) + 2 + 2
	for _, s := range ev.Services {
		n += len(s) + 3
	}
	for _, s := range ev.Categories {
		n += len(s) + 3
	}
	n += 2
	for _, f := range ev.Fields {
		n += len(f.Name) + len(f.Value) + 6
	}
	return int64(n) + rowOverhead
}

// appendStr appends a str.
func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendList(b []byte, l []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(l)))
	for _, s := range l {
		b = appendStr(b, s)
	}
	return b
}

// blockWriter builds one block's payload.
type blockWriter struct {
	raw  []byte // the events
	full []byte // header and events, for compress
	id   int64  // the block id: the first event's row id
	n    int
}

func (w *blockWriter) reset(id int64) {
	w.raw = w.raw[:0]
	w.id, w.n = id, 0
}

// add appends one event; ids must increase within a block.
func (w *blockWriter) add(id int64, s *eventstore.Stored, bytes int64) {
	ev := s.Event
	b := binary.AppendUvarint(w.raw, uint64(id-w.id))
	b = binary.AppendUvarint(b, s.BootEpoch)
	b = binary.AppendUvarint(b, s.Seq)
	b = binary.AppendVarint(b, ts(ev.Time))
	b = binary.AppendUvarint(b, uint64(bytes))
	b = appendStr(b, ev.Product)
	b = appendList(b, ev.Services)
	b = appendList(b, ev.Categories)
	b = binary.AppendUvarint(b, uint64(len(ev.Fields)))
	for _, f := range ev.Fields {
		b = appendStr(b, f.Name)
		b = appendStr(b, f.Value)
	}
	w.raw = b
	w.n++
}

// addDecoded appends an event read from a block (for rewrites).
func (w *blockWriter) addDecoded(e *blockEvent) {
	b := binary.AppendUvarint(w.raw, uint64(e.id-w.id))
	b = binary.AppendUvarint(b, e.bootEpoch)
	b = binary.AppendUvarint(b, e.seq)
	b = binary.AppendVarint(b, e.time)
	b = binary.AppendUvarint(b, uint64(e.bytes))
	b = appendStr(b, e.product)
	b = appendList(b, e.services)
	b = appendList(b, e.cats)
	b = binary.AppendUvarint(b, uint64(len(e.fields)))
	for _, f := range e.fields {
		b = appendStr(b, f.Name)
		b = appendStr(b, f.Value)
	}
	w.raw = b
	w.n++
}

// compress returns the block's zstd frame: the version byte, the count and
// the events. dst is reused.
func (w *blockWriter) compress(dst []byte) []byte {
	w.full = binary.AppendUvarint(append(w.full[:0], blockVersion), uint64(w.n))
	w.full = append(w.full, w.raw...)
	return zenc().EncodeAll(w.full, dst[:0])
}

var errCorrupt = errors.New("corrupt event block")

// blockReader walks a decompressed payload. Strings it returns point into
// one string holding the whole payload (no copy per field), so they stay
// valid after the reader is dropped.
type blockReader struct {
	p   string
	off int
	n   int // events left
	id  int64
	err error
}

// decodeBlock decompresses data (the data column of block id).
func decodeBlock(id int64, data []byte) (*blockReader, error) {
	r, _, err := decodeBlockInto(id, data, nil)
	return r, err
}

// decodeBlockInto is decodeBlock decompressing into buf (reused), which it
// returns: the reader's strings are valid only until buf is reused.
func decodeBlockInto(id int64, data, buf []byte) (*blockReader, []byte, error) {
	raw, err := zdec().DecodeAll(data, buf[:0])
	if err != nil {
		return nil, buf, fmt.Errorf("block %d: %w: %v", id, errCorrupt, err)
	}
	r, err := readBlock(id, raw)
	return r, raw, err
}

// readBlock starts reading a decompressed payload.
func readBlock(id int64, raw []byte) (*blockReader, error) {
	if len(raw) == 0 || raw[0] != blockVersion {
		return nil, fmt.Errorf("block %d: %w: unknown payload version", id, errCorrupt)
	}
	r := &blockReader{p: unsafe.String(unsafe.SliceData(raw), len(raw)), off: 1, id: id}
	n := r.uvarint()
	if r.err != nil || n > uint64(len(raw)) {
		return nil, fmt.Errorf("block %d: %w: bad count", id, errCorrupt)
	}
	r.n = int(n)
	return r, nil
}

func (r *blockReader) fail() {
	if r.err == nil {
		r.err = fmt.Errorf("block %d: %w at byte %d", r.id, errCorrupt, r.off)
	}
}

func (r *blockReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	var x uint64
	var s uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if r.off >= len(r.p) {
			r.fail()
			return 0
		}
		c := r.p[r.off]
		r.off++
		if c < 0x80 {
			return x | uint64(c)<<s
		}
		x |= uint64(c&0x7f) << s
		s += 7
	}
	r.fail()
	return 0
}

func (r *blockReader) varint() int64 {
	u := r.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (r *blockReader) str() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.p)-r.off) {
		r.fail()
		return ""
	}
	s := r.p[r.off : r.off+int(n)]
	r.off += int(n)
	return s
}

func (r *blockReader) list() []string {
	n := r.uvarint()
	if n > uint64(len(r.p)-r.off) {
		r.fail()
		return nil
	}
	if n == 0 {
		return []string{}
	}
	l := make([]string, n)
	for i := range l {
		l[i] = r.str()
	}
	return l
}

// next decodes the next event into e (its slices are fresh). It returns
// false at the end or on corruption (then r.err is set).
func (r *blockReader) next(e *blockEvent) bool {
	return r.decode(e, false)
}

// nextReuse is next, reusing e's slices: what it returns is valid until
// the next call (copy it with clone to keep it).
func (r *blockReader) nextReuse(e *blockEvent) bool {
	return r.decode(e, true)
}

func (r *blockReader) decode(e *blockEvent, reuse bool) bool {
	if r.n == 0 || r.err != nil {
		return false
	}
	r.n--
	e.id = r.id + int64(r.uvarint())
	e.bootEpoch = r.uvarint()
	e.seq = r.uvarint()
	e.time = r.varint()
	e.bytes = int64(r.uvarint())
	e.product = r.str()
	if reuse {
		e.services, e.cats = r.listInto(e.services), r.listInto(e.cats)
	} else {
		e.services, e.cats = r.list(), r.list()
	}
	nf := r.uvarint()
	if nf > uint64(len(r.p)-r.off) {
		r.fail()
	}
	if r.err != nil {
		return false
	}
	if reuse && uint64(cap(e.fields)) >= nf {
		e.fields = e.fields[:nf]
	} else {
		e.fields = make([]event.Field, nf)
	}
	for i := range e.fields {
		e.fields[i] = event.Field{Name: r.str(), Value: r.str()}
	}
	return r.err == nil
}

// values calls fn with every field value of every event left, allocating
// nothing (the full-text indexer's walk). It returns r.err.
func (r *blockReader) values(fn func(v string)) error {
	for ; r.n > 0 && r.err == nil; r.n-- {
		// Skip id delta, boot epoch, seq, time and bytes, the product, and
		// the services and categories lists.
		for range 5 {
			r.uvarint()
		}
		r.str()
		for range 2 {
			for n := r.uvarint(); n > 0 && r.err == nil; n-- {
				r.str()
			}
		}
		for n := r.uvarint(); n > 0 && r.err == nil; n-- {
			r.str() // the name
			if v := r.str(); r.err == nil {
				fn(v)
			}
		}
	}
	return r.err
}

// all decodes every event of the block.
func (r *blockReader) all() ([]blockEvent, error) {
	out := make([]blockEvent, 0, r.n)
	var e blockEvent
	for r.next(&e) {
		out = append(out, e)
	}
	return out, r.err
}

// listInto is list reusing l's storage.
func (r *blockReader) listInto(l []string) []string {
	n := r.uvarint()
	if n > uint64(len(r.p)-r.off) {
		r.fail()
		return nil
	}
	if uint64(cap(l)) < n {
		l = make([]string, n)
	}
	l = l[:n]
	for i := range l {
		l[i] = r.str()
	}
	return l
}

// clone returns a copy of rec that shares no memory with a reused block
// buffer or a reused blockEvent (decodeBlockInto, nextReuse).
func clone(rec eventstore.Record) eventstore.Record {
	rec.Product = strings.Clone(rec.Product)
	rec.Services = cloneStrings(rec.Services)
	rec.Category = cloneStrings(rec.Category)
	fs := make([]event.Field, len(rec.Fields))
	for i, f := range rec.Fields {
		fs[i] = event.Field{Name: strings.Clone(f.Name), Value: strings.Clone(f.Value)}
	}
	rec.Fields = fs
	return rec
}

func cloneStrings(l []string) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = strings.Clone(s)
	}
	return out
}

func (e *blockEvent) record(agent, host string) eventstore.Record {
	return eventstore.Record{
		ID: e.id, AgentID: agent, BootEpoch: e.bootEpoch, Seq: e.seq, Host: host,
		Time: fromTS(e.time), Product: e.product, Services: e.services, Category: e.cats, Fields: e.fields,
	}
}

// seqRun is a run of consecutive sequence numbers of one boot epoch stored
// under consecutive row ids: sequence lo+i is row firstID+i. lo and hi are
// the int64 bits of the sequences; a run never crosses from 2⁶³-1 to 2⁶³,
// so lo ≤ hi as int64.
type seqRun struct {
	epoch   uint64
	lo, hi  int64
	firstID int64
}

// appendRun extends the last run with (epoch, seq, id) or starts a new one.
func appendRun(runs []seqRun, epoch, seq uint64, id int64) []seqRun {
	q := int64(seq)
	if n := len(runs); n > 0 {
		r := &runs[n-1]
		if r.epoch == epoch && r.hi != 1<<63-1 && q == r.hi+1 && id == r.firstID+(r.hi-r.lo)+1 {
			r.hi = q
			return runs
		}
	}
	return append(runs, seqRun{epoch: epoch, lo: q, hi: q, firstID: id})
}

// categorySet adds the categories of evCats not yet in cats.
func categorySet(cats []string, evCats []string) []string {
	for _, c := range evCats {
		if !slices.Contains(cats, c) {
			cats = append(cats, c)
		}
	}
	return cats
}
