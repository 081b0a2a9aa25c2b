package wire

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
)

// Decode decompresses body according to contentEncoding ("zstd", "gzip",
// "identity" or ""), checks it against lim (zero fields take their
// defaults) and the format rules of docs/wire.md, and returns the batch.
// Every error is a *Error. The returned Batch shares no memory with body.
func Decode(body []byte, contentEncoding string, lim Limits) (*Batch, error) {
	var b *Batch
	err := decompress(body, contentEncoding, lim, func(raw []byte, lim Limits) *Error {
		var err *Error
		b, err = decodeJSON(raw, lim)
		return err
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Summary is what Check reports about a batch it accepts.
type Summary struct {
	BootEpoch         uint64
	Events            int
	FirstSeq, LastSeq uint64
}

// Check accepts and refuses exactly the bodies Decode does, with the same
// errors, but builds no Batch: it keeps no field values, so it allocates
// little. Ingest checks each batch with it and leaves decoding to the
// detection worker that reads the batch from the bus.
func Check(body []byte, contentEncoding string, lim Limits) (Summary, error) {
	var sum Summary
	err := decompress(body, contentEncoding, lim, func(raw []byte, lim Limits) *Error {
		var err *Error
		sum, err = checkJSON(raw, lim)
		return err
	})
	if err != nil {
		return Summary{}, err
	}
	return sum, nil
}

// decompress checks body's size, decompresses it into a pooled buffer and
// calls fn with the JSON, which is valid only during the call.
func decompress(body []byte, contentEncoding string, lim Limits, fn func(raw []byte, lim Limits) *Error) *Error {
	lim = lim.WithDefaults()
	if len(body) > lim.MaxBytes {
		return errorf(CodeTooLarge, "body is %d bytes, over the %d-byte limit", len(body), lim.MaxBytes)
	}
	var raw []byte
	switch enc := strings.ToLower(strings.TrimSpace(contentEncoding)); enc {
	case "", "identity":
		raw = body
	case "zstd", "gzip", "x-gzip":
		buf := getBuf(lim.MaxBytes + 1)
		defer putBuf(buf)
		var err *Error
		if enc == "zstd" {
			raw, err = unzstd(*buf, body, lim.MaxBytes)
		} else {
			raw, err = ungzip(*buf, body, lim.MaxBytes)
		}
		if err != nil {
			return err
		}
	default:
		return errorf(CodeBadEncoding, "Content-Encoding %q is not supported (use zstd, gzip or identity)", contentEncoding)
	}
	return fn(raw, lim)
}

// decodeJSON checks and decodes the decompressed body.
func decodeJSON(raw []byte, lim Limits) (*Batch, *Error) {
	if !utf8.Valid(raw) {
		return nil, errorf(CodeInvalidUTF8, "body is not valid UTF-8")
	}
	if err := scan(raw, lim.MaxDepth); err != nil {
		return nil, err
	}
	p := parser{b: raw, lim: lim}
	b, err := p.batch()
	if err != nil {
		return nil, err
	}
	// Every string the parser returns is valid UTF-8: the body is, and
	// unescaping refuses lone surrogates.
	if err := b.validate(false); err != nil {
		return nil, err
	}
	return b, nil
}

// checkJSON is decodeJSON without keeping the events.
func checkJSON(raw []byte, lim Limits) (Summary, *Error) {
	if !utf8.Valid(raw) {
		return Summary{}, errorf(CodeInvalidUTF8, "body is not valid UTF-8")
	}
	if err := scan(raw, lim.MaxDepth); err != nil {
		return Summary{}, err
	}
	c := &checker{fields: make(Fields, 0, 16)}
	p := parser{b: raw, lim: lim, chk: c}
	b, err := p.batch()
	if err != nil {
		return Summary{}, err
	}
	if err := batchError(b.Version, b.BootEpoch, c.sum.Events); err != nil {
		return Summary{}, err
	}
	if c.err != nil {
		return Summary{}, c.err
	}
	c.sum.BootEpoch = b.BootEpoch
	return c.sum, nil
}

// checker is the parser's state in Check: one event parsed at a time into
// ev, the field names only, and the first event Validate would refuse.
type checker struct {
	ev     Event
	fields Fields
	sum    Summary
	prev   uint64
	err    *Error
}

// note validates event n (just parsed into c.ev) as Validate would.
func (c *checker) note(n int) {
	e := &c.ev
	if c.err == nil {
		if err := e.validate(n, false); err != nil {
			c.err = err
		} else if e.Seq <= c.prev {
			c.err = seqError(n, e.Seq, c.prev)
		}
		c.prev = e.Seq
	}
	if n == 0 {
		c.sum.FirstSeq = e.Seq
	}
	c.sum.LastSeq = e.Seq
	c.sum.Events = n + 1
	if e.Fields != nil {
		c.fields = e.Fields[:0] // keep the grown buffer
	}
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			return string(b[n:])
		}
	}
}

// Decompression. Output goes into a pooled buffer of exactly limit+1 bytes of
// capacity, filled with io.ReadFull: a body that inflates past the limit is
// refused as soon as the limit+1st byte appears, and nothing grows.

var bufPool sync.Pool // of *[]byte

func getBuf(n int) *[]byte {
	if p, ok := bufPool.Get().(*[]byte); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n)
	return &b
}

func putBuf(p *[]byte) { bufPool.Put(p) }

// readAllBounded reads r to its end into buf; over reports that r had more
// than limit bytes.
func readAllBounded(r io.Reader, buf []byte, limit int) (out []byte, over bool, err error) {
	n, err := io.ReadFull(r, buf[:limit+1])
	switch err {
	case nil:
		return nil, true, nil
	case io.EOF, io.ErrUnexpectedEOF:
		return buf[:n], false, nil
	default:
		return nil, false, err
	}
}

// zstdDecoders pools synchronous streaming decoders, one pool per window
// limit (in practice there is one limit per server).
var zstdPools sync.Map // int -> *sync.Pool of *zstd.Decoder

func zstdPool(limit int) *sync.Pool {
	if p, ok := zstdPools.Load(limit); ok {
		return p.(*sync.Pool)
	}
	p, _ := zstdPools.LoadOrStore(limit, &sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1), // synchronous: no goroutines, nothing to Close
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(uint64(limit)+1),
			zstd.WithDecoderMaxWindow(max(uint64(limit), zstd.MinWindowSize)),
		)
		if err != nil {
			panic("wire: zstd decoder options: " + err.Error())
		}
		return d
	}})
	return p.(*sync.Pool)
}

func unzstd(buf, body []byte, limit int) ([]byte, *Error) {
	pool := zstdPool(limit)
	d := pool.Get().(*zstd.Decoder)
	defer func() {
		_ = d.Reset(nil)
		pool.Put(d)
	}()
	if err := d.Reset(bytes.NewReader(body)); err != nil {
		return nil, zstdError(err, limit)
	}
	out, over, err := readAllBounded(d, buf, limit)
	if over {
		return nil, errorf(CodeTooLarge, "body decompresses to more than %d bytes", limit)
	}
	if err != nil {
		return nil, zstdError(err, limit)
	}
	return out, nil
}

func zstdError(err error, limit int) *Error {
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
		return errorf(CodeTooLarge, "body decompresses to more than %d bytes", limit)
	}
	return errorf(CodeBadCompression, "corrupt zstd data: %v", err)
}

var gzipPool sync.Pool // of *gzip.Reader

func ungzip(buf, body []byte, limit int) ([]byte, *Error) {
	var zr *gzip.Reader
	var err error
	if p, ok := gzipPool.Get().(*gzip.Reader); ok {
		zr = p
		err = zr.Reset(bytes.NewReader(body))
	} else {
		zr, err = gzip.NewReader(bytes.NewReader(body))
	}
	if err != nil {
		return nil, errorf(CodeBadCompression, "corrupt gzip data: %v", err)
	}
	defer gzipPool.Put(zr)
	out, over, err := readAllBounded(zr, buf, limit)
	if over {
		return nil, errorf(CodeTooLarge, "body decompresses to more than %d bytes", limit)
	}
	if err != nil {
		return nil, errorf(CodeBadCompression, "corrupt gzip data: %v", err)
	}
	return out, nil
}
