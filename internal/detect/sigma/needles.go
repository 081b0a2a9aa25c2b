package sigma

import (
	"encoding/binary"
	"sort"
)

// needleSet finds which of many literal needles occur in a haystack, in one
// pass. Each needle (at least minNeedle bytes) is anchored on one of its
// 4-byte windows, chosen to be the rarest among all needles' windows. The scan
// reads every 4-byte window of the haystack, probes a bitmap (one bit per
// hashed window, 1 Mi bits: sparse enough that most probes miss), and only on
// a hit looks the window up and verifies the needles anchored there.
//
// This is a simplified form of the "shift-or / FDR" family used by Hyperscan:
// cost is a few nanoseconds per haystack byte, independent of the number of
// needles.
type needleSet struct {
	needles []string
	bitmap  []uint64
	anchors map[uint32][]anchor
}

type anchor struct {
	id     int32 // index into needles
	offset int32 // where the anchor window starts inside the needle
}

const bitmapBits = 20

func hash32(k uint32) uint32 { return (k * 0x9E3779B1) >> (32 - bitmapBits) }

func newNeedleSet(needles []string) *needleSet {
	ns := &needleSet{
		needles: needles,
		bitmap:  make([]uint64, (1<<bitmapBits)/64),
		anchors: make(map[uint32][]anchor),
	}
	// Count how many needles contain each window, to anchor on rare ones.
	freq := make(map[uint32]int)
	for _, n := range needles {
		seen := map[uint32]bool{}
		for i := 0; i+4 <= len(n); i++ {
			k := binary.LittleEndian.Uint32([]byte(n[i : i+4]))
			if !seen[k] {
				seen[k] = true
				freq[k]++
			}
		}
	}
	for id, n := range needles {
		best, bestOff := uint32(0), -1
		for i := 0; i+4 <= len(n); i++ {
			k := binary.LittleEndian.Uint32([]byte(n[i : i+4]))
			if bestOff < 0 || freq[k] < freq[best] {
				best, bestOff = k, i
			}
		}
		ns.anchors[best] = append(ns.anchors[best], anchor{id: int32(id), offset: int32(bestOff)})
		h := hash32(best)
		ns.bitmap[h>>6] |= 1 << (h & 63)
	}
	for _, list := range ns.anchors {
		sort.Slice(list, func(i, j int) bool { return list[i].id < list[j].id })
	}
	return ns
}

// scan calls found for every needle that occurs in h (possibly more than once
// per needle; the caller dedupes).
func (ns *needleSet) scan(h []byte, found func(id int32)) {
	bm := ns.bitmap
	for i := 0; i+4 <= len(h); i++ {
		k := binary.LittleEndian.Uint32(h[i:])
		x := hash32(k)
		if bm[x>>6]&(1<<(x&63)) == 0 {
			continue
		}
		for _, a := range ns.anchors[k] {
			start := i - int(a.offset)
			n := ns.needles[a.id]
			if start >= 0 && start+len(n) <= len(h) && string(h[start:start+len(n)]) == n {
				found(a.id)
			}
		}
	}
}
