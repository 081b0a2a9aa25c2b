package wire

import (
	"bytes"
	"compress/gzip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Encode validates b (see Batch.Validate) and returns its compact JSON,
// compressed for the Content-Encoding enc: "zstd" (preferred), "gzip", or
// "identity"/"" for none. It does not check size limits: the agent sizes its
// batches so that the encoded JSON stays under Limits.MaxBytes.
func Encode(b *Batch, enc string) ([]byte, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return compress(AppendJSON(nil, b), enc)
}

// compress returns js compressed for the Content-Encoding enc; for
// identity it returns js itself.
func compress(js []byte, enc string) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "", "identity":
		return js, nil
	case "zstd":
		return zstdEncoder().EncodeAll(js, make([]byte, 0, len(js)/4+64)), nil
	case "gzip", "x-gzip":
		var buf bytes.Buffer
		buf.Grow(len(js)/4 + 64)
		zw := gzipWriters.Get().(*gzip.Writer)
		defer gzipWriters.Put(zw)
		zw.Reset(&buf)
		if _, err := zw.Write(js); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	default:
		return nil, errorf(CodeBadEncoding, "Content-Encoding %q is not supported (use zstd, gzip or identity)", enc)
	}
}

// AppendJSON appends the compact JSON of b to dst without validating it.
// Times are written in UTC with RFC 3339 nanosecond precision.
func AppendJSON(dst []byte, b *Batch) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, int64(b.Version), 10)
	dst = append(dst, `,"boot_epoch":`...)
	dst = strconv.AppendUint(dst, b.BootEpoch, 10)
	dst = append(dst, `,"events":[`...)
	for i := range b.Events {
		if i > 0 {
			dst = append(dst, ',')
		}
		e := &b.Events[i]
		dst = append(dst, `{"seq":`...)
		dst = strconv.AppendUint(dst, e.Seq, 10)
		dst = append(dst, `,"time":"`...)
		dst = e.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, `","product":`...)
		dst = appendString(dst, e.Product)
		if len(e.Services) > 0 {
			dst = append(dst, `,"services":`...)
			dst = AppendStringList(dst, e.Services)
		}
		if len(e.Categories) > 0 {
			dst = append(dst, `,"categories":`...)
			dst = AppendStringList(dst, e.Categories)
		}
		dst = append(dst, `,"fields":`...)
		dst = AppendFieldPairs(dst, e.Fields)
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

var zstdEncoder = sync.OnceValue(func() *zstd.Encoder {
	// EncodeAll is safe for concurrent use; the frame records the content
	// size, so decoders know the output size up front. A 512 KiB window:
	// the default (8 MiB) kept a 16 MiB history buffer, two thirds of the
	// agent's heap, for batches whose repeats (field names, paths, the
	// same command lines) are kilobytes apart.
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(512<<10), zstd.WithLowerEncoderMem(true))
	if err != nil {
		panic("wire: zstd encoder options: " + err.Error())
	}
	return e
})

var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression)
	return zw
}}
