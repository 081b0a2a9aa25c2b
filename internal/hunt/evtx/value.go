package evtx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Value types of substitution values.
const (
	typeNull      = 0x00
	typeString    = 0x01
	typeAnsi      = 0x02
	typeInt8      = 0x03
	typeUint8     = 0x04
	typeInt16     = 0x05
	typeUint16    = 0x06
	typeInt32     = 0x07
	typeUint32    = 0x08
	typeInt64     = 0x09
	typeUint64    = 0x0a
	typeReal32    = 0x0b
	typeReal64    = 0x0c
	typeBool      = 0x0d
	typeBinary    = 0x0e
	typeGUID      = 0x0f
	typeSizeT     = 0x10
	typeFileTime  = 0x11
	typeSysTime   = 0x12
	typeSID       = 0x13
	typeHexInt32  = 0x14
	typeHexInt64  = 0x15
	typeEvtHandle = 0x20
	typeBinXML    = 0x21
	typeEvtXML    = 0x23
	typeArray     = 0x80
)

var errValueSize = errors.New("value size does not fit its type")

// fixedSize is the size of one item of a fixed-size type, 0 for variable.
func fixedSize(t uint8) int {
	switch t {
	case typeInt8, typeUint8:
		return 1
	case typeInt16, typeUint16:
		return 2
	case typeInt32, typeUint32, typeReal32, typeBool, typeHexInt32:
		return 4
	case typeInt64, typeUint64, typeReal64, typeFileTime, typeHexInt64:
		return 8
	case typeGUID, typeSysTime:
		return 16
	}
	return 0
}

// forEachItem calls fn for every item of an array value. An empty array is
// one empty item. String arrays are NUL-separated.
func forEachItem(t uint8, data []byte, fn func([]byte) error) error {
	base := t &^ typeArray
	if len(data) == 0 {
		return fn(nil)
	}
	switch base {
	case typeString:
		start := 0
		for i := 0; i+1 < len(data); i += 2 {
			if data[i] == 0 && data[i+1] == 0 {
				if err := fn(data[start:i]); err != nil {
					return err
				}
				start = i + 2
			}
		}
		if start < len(data)-1 {
			return fn(data[start:])
		}
		return nil
	case typeAnsi:
		start := 0
		for i, b := range data {
			if b == 0 {
				if err := fn(data[start:i]); err != nil {
					return err
				}
				start = i + 1
			}
		}
		if start < len(data) {
			return fn(data[start:])
		}
		return nil
	case typeSID:
		for len(data) >= 8 {
			n := 8 + 4*int(data[1])
			if n > len(data) {
				return errValueSize
			}
			if err := fn(data[:n]); err != nil {
				return err
			}
			data = data[n:]
		}
		if len(data) != 0 {
			return errValueSize
		}
		return nil
	case typeSizeT:
		// Pointer-sized: 8 bytes unless the array only divides by 4.
		size := 8
		if len(data)%8 != 0 {
			size = 4
		}
		return eachFixed(data, size, fn)
	}
	size := fixedSize(base)
	if size == 0 {
		return fn(data) // binary and friends are not arrays; render whole
	}
	return eachFixed(data, size, fn)
}

func eachFixed(data []byte, size int, fn func([]byte) error) error {
	if len(data)%size != 0 {
		return errValueSize
	}
	for i := 0; i < len(data); i += size {
		if err := fn(data[i : i+size]); err != nil {
			return err
		}
	}
	return nil
}

// appendValue appends the text form of a value, matching the JSON rendering
// of SigmaHQ's regression data (evtx_dump): numbers in decimal, hex integers
// as lower-case 0x…, GUIDs upper case without braces, times as
// 2006-01-02T15:04:05.000000Z, binary as upper-case hex. Arrays are joined
// with commas.
func appendValue(dst []byte, t uint8, b []byte) ([]byte, error) {
	if t&typeArray != 0 {
		first := true
		err := forEachItem(t, b, func(item []byte) error {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			var err error
			dst, err = appendValue(dst, t&^typeArray, item)
			return err
		})
		return dst, err
	}
	if size := fixedSize(t); size != 0 && len(b) != size {
		if t == typeBool && (len(b) == 1 || len(b) == 2) {
			return strconv.AppendBool(dst, !allZero(b)), nil
		}
		return appendHex(dst, b), errValueSize
	}
	le := binary.LittleEndian
	switch t {
	case typeNull:
		return dst, nil
	case typeString:
		return appendUTF16(dst, b, true), nil
	case typeAnsi:
		for _, c := range b {
			if c == 0 {
				break
			}
			if c < 0x80 {
				dst = append(dst, c)
			} else {
				dst = append(dst, 0xc0|c>>6, 0x80|c&0x3f) // Latin-1
			}
		}
		return dst, nil
	case typeInt8:
		return strconv.AppendInt(dst, int64(int8(b[0])), 10), nil
	case typeUint8:
		return strconv.AppendUint(dst, uint64(b[0]), 10), nil
	case typeInt16:
		return strconv.AppendInt(dst, int64(int16(le.Uint16(b))), 10), nil
	case typeUint16:
		return strconv.AppendUint(dst, uint64(le.Uint16(b)), 10), nil
	case typeInt32:
		return strconv.AppendInt(dst, int64(int32(le.Uint32(b))), 10), nil
	case typeUint32:
		return strconv.AppendUint(dst, uint64(le.Uint32(b)), 10), nil
	case typeInt64:
		return strconv.AppendInt(dst, int64(le.Uint64(b)), 10), nil
	case typeUint64:
		return strconv.AppendUint(dst, le.Uint64(b), 10), nil
	case typeReal32:
		return appendFloat(dst, float64(math.Float32frombits(le.Uint32(b))), 32), nil
	case typeReal64:
		return appendFloat(dst, math.Float64frombits(le.Uint64(b)), 64), nil
	case typeBool:
		return strconv.AppendBool(dst, le.Uint32(b) != 0), nil
	case typeGUID:
		return appendGUID(dst, b), nil
	case typeSizeT:
		switch len(b) {
		case 4:
			return appendHexInt(dst, uint64(le.Uint32(b))), nil
		case 8:
			return appendHexInt(dst, le.Uint64(b)), nil
		}
		return appendHex(dst, b), errValueSize
	case typeFileTime:
		return appendFileTime(dst, le.Uint64(b)), nil
	case typeSysTime:
		return appendSysTime(dst, b), nil
	case typeSID:
		return appendSID(dst, b)
	case typeHexInt32:
		return appendHexInt(dst, uint64(le.Uint32(b))), nil
	case typeHexInt64:
		return appendHexInt(dst, le.Uint64(b)), nil
	case typeBinary, typeEvtHandle, typeEvtXML:
		return appendHex(dst, b), nil
	}
	return dst, fmt.Errorf("unknown value type %#02x", t)
}

const hexUpper = "0123456789ABCDEF"

func appendHex(dst, b []byte) []byte {
	for _, c := range b {
		dst = append(dst, hexUpper[c>>4], hexUpper[c&0xf])
	}
	return dst
}

func appendHexInt(dst []byte, v uint64) []byte {
	return strconv.AppendUint(append(dst, '0', 'x'), v, 16)
}

// appendGUID writes the GUID as 8-4-4-4-12 upper-case hex; the first three
// groups are little-endian.
func appendGUID(dst, b []byte) []byte {
	order := [16]int{3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15}
	for i, j := range order {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexUpper[b[j]>>4], hexUpper[b[j]&0xf])
	}
	return dst
}

// appendSID writes S-revision-authority-sub1-…; the authority is 48-bit big
// endian, the sub-authorities 32-bit little endian.
func appendSID(dst, b []byte) ([]byte, error) {
	if len(b) < 8 || len(b) < 8+4*int(b[1]) {
		return appendHex(dst, b), errValueSize
	}
	dst = append(dst, 'S', '-')
	dst = strconv.AppendUint(dst, uint64(b[0]), 10)
	var auth uint64
	for _, c := range b[2:8] {
		auth = auth<<8 | uint64(c)
	}
	dst = append(dst, '-')
	dst = strconv.AppendUint(dst, auth, 10)
	for i := range int(b[1]) {
		dst = append(dst, '-')
		dst = strconv.AppendUint(dst, uint64(binary.LittleEndian.Uint32(b[8+4*i:])), 10)
	}
	return dst, nil
}

// filetimeEpoch is 1601-01-01 in 100 ns units before the Unix epoch.
const filetimeEpoch = 116444736000000000

func appendFileTime(dst []byte, ft uint64) []byte {
	d := int64(ft/10_000_000) - filetimeEpoch/10_000_000
	t := time.Unix(d, int64(ft%10_000_000)*100).UTC()
	return appendTime(dst, t.Year(), int(t.Month()), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/1000)
}

func appendSysTime(dst, b []byte) []byte {
	u := func(i int) int { return int(binary.LittleEndian.Uint16(b[i:])) }
	return appendTime(dst, u(0), u(2), u(6), u(8), u(10), u(12), u(14)*1000)
}

// appendTime writes 2006-01-02T15:04:05.000000Z.
func appendTime(dst []byte, year, mon, day, hour, min, sec, usec int) []byte {
	dst = appendPadded(dst, year, 4)
	dst = append(dst, '-')
	dst = appendPadded(dst, mon, 2)
	dst = append(dst, '-')
	dst = appendPadded(dst, day, 2)
	dst = append(dst, 'T')
	dst = appendPadded(dst, hour, 2)
	dst = append(dst, ':')
	dst = appendPadded(dst, min, 2)
	dst = append(dst, ':')
	dst = appendPadded(dst, sec, 2)
	dst = append(dst, '.')
	dst = appendPadded(dst, usec, 6)
	return append(dst, 'Z')
}

func appendPadded(dst []byte, v, width int) []byte {
	if v < 0 {
		dst = append(dst, '-')
		v = -v
	}
	var buf [20]byte
	i := len(buf)
	for v > 0 || i > len(buf)-width {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, buf[i:]...)
}

// appendFloat writes the shortest text that reads back as the same value,
// in plain notation between 1e-5 and 1e16 and exponent notation outside.
func appendFloat(dst []byte, v float64, bits int) []byte {
	switch {
	case math.IsNaN(v):
		return append(dst, "NaN"...)
	case math.IsInf(v, 1):
		return append(dst, "inf"...)
	case math.IsInf(v, -1):
		return append(dst, "-inf"...)
	}
	if a := math.Abs(v); a == 0 || (a >= 1e-5 && a < 1e16) {
		n := len(dst)
		dst = strconv.AppendFloat(dst, v, 'f', -1, bits)
		for _, c := range dst[n:] {
			if c == '.' {
				return dst
			}
		}
		return append(dst, '.', '0')
	}
	return strconv.AppendFloat(dst, v, 'e', -1, bits)
}
