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
	lim = lim.WithDefaults()
	if len(body) > lim.MaxBytes {
		return nil, errorf(CodeTooLarge, "body is %d bytes, over the %d-byte limit", len(body), lim.MaxBytes)
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
			return nil, err
		}
	default:
		return nil, errorf(CodeBadEncoding, "Content-Encoding %q is not supported (use zstd, gzip or identity)", contentEncoding)
	}
	b, werr := decodeJSON(raw, lim)
	if werr != nil {
		return nil, werr
	}
	return b, nil
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
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return b, nil
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
