package evtx

import (
	"bytes"
	"math/rand"
	"testing"
	"time"
)

func TestStressTmp(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	seeds := fuzzSeeds()
	base := seeds["two-records"]
	for i := 0; i < 3000; i++ {
		d := bytes.Clone(base)
		for k := 0; k < 1+rng.Intn(8); k++ {
			d[fileHeaderSize+rng.Intn(len(d)-fileHeaderSize)] = byte(rng.Intn(256))
		}
		start := time.Now()
		fuzzRead(t, d)
		if el := time.Since(start); el > 200*time.Millisecond {
			t.Fatalf("input %d took %v", i, el)
		}
	}
}
