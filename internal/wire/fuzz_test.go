package wire_test

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"

	"github.com/vigil-edr/vigil/internal/wire"
	"github.com/vigil-edr/vigil/internal/wire/wiretest"
)

// FuzzDecode feeds arbitrary bodies under every encoding. Properties: Decode
// never panics; every error is a *wire.Error with a code from the table;
// Check gives the same answer and error, and Decode's batch's summary; an
// accepted batch re-encodes to a body that decodes to the same batch.
// Seeds live in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	b := wiretest.Batch(3, 2, 10)
	for _, enc := range []string{"identity", "zstd", "gzip"} {
		body, err := wire.Encode(b, enc)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body, enc)
	}
	f.Add([]byte(good), "")
	known := map[wire.Code]bool{}
	for _, c := range wire.Codes {
		known[c] = true
	}
	lim := wire.Limits{MaxBytes: 64 << 10, MaxEvents: 50, MaxEventBytes: 8 << 10, MaxDepth: 16}
	f.Fuzz(func(t *testing.T, body []byte, enc string) {
		got, err := wire.Decode(body, enc, lim)
		// Check accepts and refuses exactly what Decode does.
		sum, cerr := wire.Check(body, enc, lim)
		if (err == nil) != (cerr == nil) || err != nil && err.Error() != cerr.Error() {
			t.Fatalf("Decode error %v, Check error %v", err, cerr)
		}
		if err == nil {
			if want := (wire.Summary{BootEpoch: got.BootEpoch, Events: len(got.Events), FirstSeq: got.FirstSeq(), LastSeq: got.LastSeq()}); sum != want {
				t.Fatalf("Check = %+v, want %+v", sum, want)
			}
		}
		if err != nil {
			var we *wire.Error
			if !errors.As(err, &we) || !known[we.Code] {
				t.Fatalf("error %T %v is not a *wire.Error from the table", err, err)
			}
			return
		}
		again, err := wire.Encode(got, "identity")
		if err != nil {
			t.Fatalf("accepted batch does not re-encode: %v", err)
		}
		back, err := wire.Decode(again, "identity", wire.Limits{})
		if err != nil {
			t.Fatalf("re-encoded batch is refused: %v\n%s", err, again)
		}
		for i := range got.Events { // time zones are normalised to UTC
			got.Events[i].Time = got.Events[i].Time.UTC()
		}
		if !reflect.DeepEqual(got, back) {
			t.Fatalf("round trip differs:\n%+v\n%+v", got, back)
		}
	})
}

// FuzzDecodeHealth: DecodeHealth never panics, and what it accepts
// survives a round trip through encoding/json unchanged.
func FuzzDecodeHealth(f *testing.F) {
	if b, err := os.ReadFile("testdata/health/good.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"time":"2026-12-02T14:00:00Z","sensors":[{"name":"p","state":"running"}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok, err := wire.DecodeHealth(b)
		if !ok || err != nil {
			return
		}
		again, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		h2, ok, err := wire.DecodeHealth(again)
		if !ok || err != nil {
			t.Fatalf("re-encoded health refused: %v\n%s", err, again)
		}
		if h2.Time.Equal(h.Time) {
			h2.Time = h.Time
		}
		if !reflect.DeepEqual(h, h2) {
			t.Fatalf("round trip changed %+v into %+v", h, h2)
		}
	})
}
