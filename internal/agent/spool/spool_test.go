package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// quiet returns options whose background commit never fires on its own, so a
// test decides when records become durable.
func quiet(dir string) Options {
	return Options{Dir: dir, SyncEvery: time.Hour, SyncEvents: 1 << 30}
}

func mustOpen(t testing.TB, o Options) *Spool {
	t.Helper()
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func payloadFor(i int) []byte { return fmt.Appendf(nil, "event-%d", i) }

func appendN(t testing.TB, s *Spool, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if _, err := s.Append(payloadFor(i)); err != nil {
			t.Fatal(err)
		}
	}
}

// readAll reads every durable record after after, in batches.
func readAll(t testing.TB, s *Spool, after uint64) []Record {
	t.Helper()
	var all []Record
	for {
		recs, err := s.Read(after, 1000, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return all
		}
		all = append(all, recs...)
		after = recs[len(recs)-1].Seq
	}
}

// checkRun fails unless recs are exactly first..last with the payloads
// appendN gives (payloadFor(seq-1)).
func checkRun(t testing.TB, recs []Record, first, last uint64) {
	t.Helper()
	if uint64(len(recs)) != last-first+1 {
		t.Fatalf("got %d records, want %d..%d", len(recs), first, last)
	}
	for i, r := range recs {
		want := first + uint64(i)
		if r.Seq != want {
			t.Fatalf("record %d has seq %d, want %d", i, r.Seq, want)
		}
		if !bytes.Equal(r.Payload, payloadFor(int(want-1))) {
			t.Fatalf("seq %d payload %q", r.Seq, r.Payload)
		}
	}
}

func segFiles(t testing.TB, dir string) []uint64 {
	t.Helper()
	f, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestAppendReadOrder(t *testing.T) {
	s := mustOpen(t, quiet(t.TempDir()))
	defer s.Close()
	for i := range 10 {
		seq, err := s.Append(payloadFor(i))
		if err != nil || seq != uint64(i+1) {
			t.Fatalf("Append %d = %d, %v", i, seq, err)
		}
	}
	if recs, err := s.Read(0, 100, 0); err != nil || len(recs) != 0 || s.Durable() != 0 {
		t.Fatalf("before Sync: Read = %d records, %v; Durable = %d", len(recs), err, s.Durable())
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if s.Durable() != 10 {
		t.Fatalf("Durable = %d", s.Durable())
	}
	recs, err := s.Read(0, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkRun(t, recs, 1, 10)

	recs, _ = s.Read(5, 2, 0)
	checkRun(t, recs, 6, 7)
	recs, _ = s.Read(3, 0, 1) // a byte limit still returns one record
	checkRun(t, recs, 4, 4)
	recs, _ = s.Read(0, 0, 3*len("event-0"))
	checkRun(t, recs, 1, 3)

	// Appended but not yet synced records stay invisible.
	appendN(t, s, 10, 5)
	checkRun(t, readAll(t, s, 0), 1, 10)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	checkRun(t, readAll(t, s, 7), 8, 15)
}

func TestBackgroundCommit(t *testing.T) {
	o := quiet(t.TempDir())
	o.SyncEvery = 10 * time.Millisecond
	s := mustOpen(t, o)
	defer s.Close()
	appendN(t, s, 0, 3)
	waitFor(t, func() bool { return s.Durable() == 3 })

	o = quiet(t.TempDir())
	o.SyncEvents = 100
	s2 := mustOpen(t, o)
	defer s2.Close()
	appendN(t, s2, 0, 99)
	time.Sleep(20 * time.Millisecond)
	if d := s2.Durable(); d != 0 {
		t.Fatalf("Durable = %d before SyncEvents records", d)
	}
	appendN(t, s2, 99, 1)
	waitFor(t, func() bool { return s2.Durable() == 100 })
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestAckDeletesSegments(t *testing.T) {
	dir := t.TempDir()
	o := quiet(dir)
	o.SegmentBytes = 256
	s := mustOpen(t, o)
	defer s.Close()
	appendN(t, s, 0, 100) // 24+16+8..9 bytes per record: ~8 per segment
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Segments < 10 || st.Segments != len(segFiles(t, dir)) || st.Depth != 100 {
		t.Fatalf("stats %+v, %d files", st, len(segFiles(t, dir)))
	}
	if err := s.Ack(101); !errors.Is(err, ErrAckBeyondDurable) {
		t.Fatalf("Ack(101) = %v", err)
	}
	if err := s.Ack(50); err != nil {
		t.Fatal(err)
	}
	files := segFiles(t, dir)
	st = s.Stats()
	if st.Acked != 50 || st.Depth != 50 || st.Segments != len(files) || files[0] > 51 || len(files) > 8 {
		t.Fatalf("after Ack(50): stats %+v, files %v", st, files)
	}
	checkRun(t, readAll(t, s, 0), 51, 100)
	checkRun(t, readAll(t, s, 10), 51, 100)
	if err := s.Ack(40); err != nil { // already acked: no-op
		t.Fatal(err)
	}
	if err := s.Ack(100); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Depth != 0 || st.Segments != 1 || len(segFiles(t, dir)) != 1 {
		t.Fatalf("after Ack(100): %+v", st)
	}
	if recs := readAll(t, s, 0); len(recs) != 0 {
		t.Fatalf("read %d acked records", len(recs))
	}
}

func TestReopenContinues(t *testing.T) {
	dir := t.TempDir()
	o := quiet(dir)
	o.SegmentBytes = 256
	s := mustOpen(t, o)
	epoch := s.BootEpoch()
	appendN(t, s, 0, 30)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(12); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v", err)
	}

	for range 3 { // reopening with nothing appended must not disturb anything
		s = mustOpen(t, o)
		if s.BootEpoch() != epoch {
			t.Fatalf("epoch %d, want %d", s.BootEpoch(), epoch)
		}
		st := s.Stats()
		if st.Durable != 30 || st.Acked != 12 || st.Depth != 18 {
			t.Fatalf("after reopen: %+v", st)
		}
		checkRun(t, readAll(t, s, 0), 13, 30)
		s.Close()
	}
	s = mustOpen(t, o)
	defer s.Close()
	if seq, err := s.Append(payloadFor(30)); err != nil || seq != 31 {
		t.Fatalf("Append after reopen = %d, %v", seq, err)
	}
	s.Sync()
	checkRun(t, readAll(t, s, 0), 13, 31)

	// Everything acked, then reopened: numbering continues past the ack
	// even though no segment holds a record any more.
	s.Ack(31)
	s.Close()
	s = mustOpen(t, o)
	if seq, _ := s.Append(nil); seq != 32 {
		t.Fatalf("seq after full ack and reopen = %d", seq)
	}
}

func TestWipedSpoolGetsNewEpoch(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	now := time.Unix(1700000000, 0)
	o := quiet(dir)
	o.Now = func() time.Time { return now }
	s := mustOpen(t, o)
	if s.BootEpoch() != uint64(now.UnixNano()) {
		t.Fatalf("epoch %d", s.BootEpoch())
	}
	appendN(t, s, 0, 3)
	s.Close()
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("spool dir: %v, %v", fi.Mode(), err)
	}
	os.RemoveAll(dir)
	now = now.Add(time.Second)
	s = mustOpen(t, o)
	defer s.Close()
	if s.BootEpoch() != uint64(now.UnixNano()) {
		t.Fatalf("epoch after wipe %d", s.BootEpoch())
	}
	if seq, _ := s.Append(nil); seq != 1 {
		t.Fatalf("first seq of new epoch = %d", seq)
	}
}

// A lost meta file (not something the spool does) keeps the epoch from the
// segment headers and resends everything still spooled.
func TestLostMetaKeepsEpoch(t *testing.T) {
	dir := t.TempDir()
	o := quiet(dir)
	o.SegmentBytes = 256
	s := mustOpen(t, o)
	epoch := s.BootEpoch()
	appendN(t, s, 0, 30)
	s.Sync()
	s.Ack(20)
	s.Close()
	if err := os.Remove(filepath.Join(dir, metaName)); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, o)
	defer s.Close()
	if s.BootEpoch() != epoch {
		t.Fatalf("epoch %d, want %d", s.BootEpoch(), epoch)
	}
	recs := readAll(t, s, 0)
	if len(recs) == 0 || recs[len(recs)-1].Seq != 30 || recs[0].Seq > 21 {
		t.Fatalf("read %d records", len(recs))
	}
	checkRun(t, recs, recs[0].Seq, 30)
}

func TestTornTail(t *testing.T) {
	// Each case damages the last segment, which holds records 1..10, and
	// says which record must be the last one recovered.
	cases := []struct {
		name   string
		damage func(b []byte, offs []int) []byte
		last   uint64
	}{
		{"mid-payload", func(b []byte, offs []int) []byte { return b[:len(b)-3] }, 9},
		{"mid-header", func(b []byte, offs []int) []byte { return b[:offs[9]+5] }, 9},
		{"flipped payload byte", func(b []byte, offs []int) []byte { b[len(b)-1] ^= 0x40; return b }, 9},
		{"flipped length", func(b []byte, offs []int) []byte { b[offs[9]] ^= 1; return b }, 9},
		{"flipped seq", func(b []byte, offs []int) []byte { b[offs[9]+8] ^= 1; return b }, 9},
		{"flipped byte mid-segment", func(b []byte, offs []int) []byte { b[offs[4]+recHeaderSize] ^= 1; return b }, 4},
		{"zeros appended", func(b []byte, offs []int) []byte { return append(b, make([]byte, 4096)...) }, 10},
		{"torn header", func(b []byte, offs []int) []byte { return b[:10] }, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s := mustOpen(t, quiet(dir))
			appendN(t, s, 0, 10)
			s.Close()
			path := filepath.Join(dir, segName(1))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var offs []int
			for off := segHeaderSize; off < len(b); off += recHeaderSize + int(binary.LittleEndian.Uint32(b[off:])) {
				offs = append(offs, off)
			}
			if len(offs) != 10 {
				t.Fatalf("found %d records", len(offs))
			}
			if err := os.WriteFile(path, c.damage(b, offs), 0o600); err != nil {
				t.Fatal(err)
			}

			s = mustOpen(t, quiet(dir))
			if d := s.Durable(); d != c.last {
				t.Fatalf("Durable after recovery = %d, want %d", d, c.last)
			}
			if c.last > 0 {
				checkRun(t, readAll(t, s, 0), 1, c.last)
			}
			seq, err := s.Append(payloadFor(int(c.last)))
			if err != nil || seq != c.last+1 {
				t.Fatalf("Append after recovery = %d, %v", seq, err)
			}
			s.Close()
			s = mustOpen(t, quiet(dir))
			defer s.Close()
			checkRun(t, readAll(t, s, 0), 1, c.last+1)
		})
	}
}

// Corruption in a segment that is not the last one loses that segment's
// tail; the next segment's records are still delivered.
func TestCorruptMiddleSegment(t *testing.T) {
	dir := t.TempDir()
	o := quiet(dir)
	o.SegmentBytes = 256
	s := mustOpen(t, o)
	appendN(t, s, 0, 40)
	s.Close()
	files := segFiles(t, dir)
	if len(files) < 3 {
		t.Fatalf("files %v", files)
	}
	path := filepath.Join(dir, segName(files[1]))
	b, _ := os.ReadFile(path)
	b[len(b)-1] ^= 1 // last record of the second segment
	os.WriteFile(path, b, 0o600)

	s = mustOpen(t, o)
	defer s.Close()
	recs := readAll(t, s, 0)
	lost := files[2] - 1
	checkRun(t, recs[:lost-1], 1, lost-1)
	checkRun(t, recs[lost-1:], lost+1, 40)
	if seq, _ := s.Append(nil); seq != 41 {
		t.Fatalf("next seq %d", seq)
	}
}

// When the segments after a corrupt one hold nothing (here: the last one's
// header is torn), the lost numbers are still not given out again: the
// server may have stored them.
func TestCorruptThenEmptySegment(t *testing.T) {
	dir := t.TempDir()
	o := quiet(dir)
	o.SegmentBytes = 256
	s := mustOpen(t, o)
	appendN(t, s, 0, 40)
	s.Close()
	files := segFiles(t, dir)
	n := len(files)
	prev, last := filepath.Join(dir, segName(files[n-2])), filepath.Join(dir, segName(files[n-1]))
	os.WriteFile(last, []byte("VGSP"), 0o600)
	b, _ := os.ReadFile(prev)
	b[segHeaderSize+recHeaderSize] ^= 1 // the first record of the one before
	os.WriteFile(prev, b, 0o600)

	s = mustOpen(t, o)
	defer s.Close()
	checkRun(t, readAll(t, s, 0), 1, files[n-2]-1)
	if seq, _ := s.Append(nil); seq != files[n-1] {
		t.Fatalf("next seq %d, want %d", seq, files[n-1])
	}
}

func TestBoundDropsOldest(t *testing.T) {
	dir := t.TempDir()
	o := quiet(dir)
	o.SegmentBytes = 1024
	o.MaxBytes = 4096
	s := mustOpen(t, o)
	payload := bytes.Repeat([]byte("x"), 100) // 116-byte records, 8 per segment
	const n, acked = 1000, 10
	for i := range n {
		if _, err := s.Append(payload); err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.Bytes > o.MaxBytes {
			t.Fatalf("after %d appends: %d bytes", i+1, st.Bytes)
		}
		if i == 20 { // before the first drop
			s.Sync()
			if err := s.Ack(acked); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.Sync()
	check := func(s *Spool) {
		t.Helper()
		st := s.Stats()
		recs := readAll(t, s, 0)
		first := recs[0].Seq
		for i, r := range recs {
			if r.Seq != first+uint64(i) || !bytes.Equal(r.Payload, payload) {
				t.Fatalf("record %d: seq %d", i, r.Seq)
			}
		}
		if recs[len(recs)-1].Seq != n || uint64(len(recs)) != st.Depth {
			t.Fatalf("read %d..%d, stats %+v", first, recs[len(recs)-1].Seq, st)
		}
		// Every record is acked, dropped or still readable, exactly once.
		if st.Dropped != first-1-acked || st.Acked != acked {
			t.Fatalf("stats %+v, first readable %d", st, first)
		}
		if st.Segments != len(segFiles(t, dir)) || st.Bytes > o.MaxBytes {
			t.Fatalf("segments %d, files %v", st.Segments, segFiles(t, dir))
		}
	}
	check(s)
	s.Close()
	s = mustOpen(t, o)
	defer s.Close()
	check(s)
	if seq, _ := s.Append(payload); seq != n+1 {
		t.Fatalf("seq after reopen %d", seq)
	}
}

// Drops are counted on disk before the segment files go: a file that
// survives a crash after the count was written is deleted, not recounted.
func TestDropCrashBeforeRemove(t *testing.T) {
	dir := t.TempDir()
	o := quiet(dir)
	o.SegmentBytes = 1024
	o.MaxBytes = 2048
	s := mustOpen(t, o)
	payload := bytes.Repeat([]byte("y"), 100)
	for range 8 { // fills the first segment
		s.Append(payload)
	}
	s.Sync()
	saved, err := os.ReadFile(filepath.Join(dir, segName(1)))
	if err != nil {
		t.Fatal(err)
	}
	for range 16 {
		s.Append(payload)
	}
	s.Close()
	st := s.Stats()
	if st.Dropped == 0 {
		t.Fatalf("nothing dropped: %+v", st)
	}
	os.WriteFile(filepath.Join(dir, segName(1)), saved, 0o600)
	s = mustOpen(t, o)
	defer s.Close()
	if st2 := s.Stats(); st2.Dropped != st.Dropped || st2.Depth != st.Depth {
		t.Fatalf("after restoring a dropped segment: %+v, want %+v", st2, st)
	}
	if _, err := os.Stat(filepath.Join(dir, segName(1))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dropped segment survived recovery: %v", err)
	}
	checkRun2 := readAll(t, s, 0)
	if uint64(len(checkRun2)) != st.Depth || checkRun2[0].Seq != st.Dropped+1 {
		t.Fatalf("read %d records from %d", len(checkRun2), checkRun2[0].Seq)
	}
}

func TestLimits(t *testing.T) {
	dir := t.TempDir()
	o := quiet(dir)
	o.SegmentBytes = 1 << 10
	o.MaxBytes = 4 << 10
	s := mustOpen(t, o)
	defer s.Close()
	if _, err := s.Append(make([]byte, MaxPayload+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized payload: %v", err)
	}
	if _, err := s.Append(make([]byte, 5000)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("payload above MaxBytes: %v", err)
	}
	if _, err := s.Append(make([]byte, 3000)); err != nil { // bigger than a segment: fine
		t.Fatal(err)
	}
	if _, err := Open(o); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v", err)
	}
	for _, bad := range []Options{
		{},
		{Dir: dir, SegmentBytes: 10},
		{Dir: dir, SegmentBytes: 1 << 20, MaxBytes: 1 << 20},
		{Dir: dir, SyncEvery: -1},
	} {
		if _, err := Open(bad); !errors.Is(err, ErrOptions) {
			t.Errorf("Open(%+v) = %v", bad, err)
		}
	}
}

// The outage case: the server is unreachable while a million events pile
// up, then the backlog drains in batches of 1,000.
func TestOutageBacklog(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, Options{Dir: dir})
	defer s.Close()
	const n = 1_000_000
	var p [16]byte
	for i := range n {
		binary.LittleEndian.PutUint64(p[:], uint64(i+1))
		if _, err := s.Append(p[:]); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	after := uint64(0)
	for after < n {
		recs, err := s.Read(after, 1000, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1000 {
			t.Fatalf("batch after %d has %d records", after, len(recs))
		}
		for _, r := range recs {
			after++
			if r.Seq != after || binary.LittleEndian.Uint64(r.Payload) != after {
				t.Fatalf("got seq %d (payload %d), want %d", r.Seq, binary.LittleEndian.Uint64(r.Payload), after)
			}
		}
		if err := s.Ack(after); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Depth != 0 || st.Acked != n || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// Several appenders and one sender: every record is delivered exactly once
// and in order, and each appender's records keep their relative order.
func TestConcurrentAppendReadAck(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, Options{Dir: dir, SegmentBytes: 16 << 10, SyncEvery: time.Millisecond, SyncEvents: 100})
	defer s.Close()
	const writers, each = 4, 5000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				var p [16]byte
				binary.LittleEndian.PutUint64(p[:8], uint64(w))
				binary.LittleEndian.PutUint64(p[8:], uint64(i))
				if _, err := s.Append(p[:]); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	next := make([]uint64, writers)
	after := uint64(0)
	deadline := time.Now().Add(30 * time.Second)
	for after < writers*each {
		if time.Now().After(deadline) {
			t.Fatalf("only %d records delivered", after)
		}
		recs, err := s.Read(after, 300, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			after++
			w, i := binary.LittleEndian.Uint64(r.Payload[:8]), binary.LittleEndian.Uint64(r.Payload[8:])
			if r.Seq != after || i != next[w] {
				t.Fatalf("seq %d (writer %d #%d), want seq %d #%d", r.Seq, w, i, after, next[w])
			}
			next[w]++
		}
		if len(recs) > 0 {
			if err := s.Ack(after); err != nil {
				t.Fatal(err)
			}
		} else {
			time.Sleep(time.Millisecond)
		}
		_ = s.Stats()
	}
	wg.Wait()
	if st := s.Stats(); st.Depth != 0 || st.Segments > 2 {
		t.Fatalf("stats %+v", st)
	}
}
