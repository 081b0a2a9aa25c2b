package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Errors callers may branch on.
var (
	ErrClosed           = errors.New("spool: closed")
	ErrTooLarge         = errors.New("spool: payload too large")
	ErrLocked           = errors.New("spool: directory in use by another process")
	ErrAckBeyondDurable = errors.New("spool: ack beyond durable records")
	ErrCorrupt          = errors.New("spool: corrupt record")
	ErrOptions          = errors.New("spool: invalid options")
	ErrExhausted        = errors.New("spool: sequence numbers exhausted")
)

// Options configures a Spool. Zero fields take their defaults.
type Options struct {
	Dir          string        // required; created with mode 0700
	MaxBytes     int64         // bound on segment bytes; default 1 GiB; at least 2×SegmentBytes
	SegmentBytes int64         // segment file size before rotation; default 64 MiB
	SyncEvery    time.Duration // longest wait before a group commit; default 200 ms
	SyncEvents   int           // records that trigger a group commit; default 1,000
	// AckEvery is the longest an acknowledgement that deletes no segment
	// waits before meta is written (at the next group commit tick); default
	// 5 s; negative writes meta at every acknowledgement. A crash loses at
	// most this much acknowledgement progress: those records are sent
	// again, and the server drops them by (agent, sequence).
	AckEvery time.Duration
	Now      func() time.Time
}

func (o Options) withDefaults() (Options, error) {
	if o.Dir == "" {
		return o, fmt.Errorf("%w: Dir is empty", ErrOptions)
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = 1 << 30
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = 64 << 20
	}
	if o.SyncEvery == 0 {
		o.SyncEvery = 200 * time.Millisecond
	}
	if o.SyncEvents == 0 {
		o.SyncEvents = 1000
	}
	if o.AckEvery == 0 {
		o.AckEvery = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	switch {
	case o.SegmentBytes < segHeaderSize+recHeaderSize:
		return o, fmt.Errorf("%w: SegmentBytes %d is below %d", ErrOptions, o.SegmentBytes, segHeaderSize+recHeaderSize)
	case o.MaxBytes < 2*o.SegmentBytes:
		return o, fmt.Errorf("%w: MaxBytes %d is below 2×SegmentBytes (%d)", ErrOptions, o.MaxBytes, 2*o.SegmentBytes)
	case o.SyncEvery < 0 || o.SyncEvents < 0:
		return o, fmt.Errorf("%w: SyncEvery and SyncEvents must not be negative", ErrOptions)
	}
	return o, nil
}

// Record is one spooled event.
type Record struct {
	Seq     uint64
	Payload []byte
}

// Stats is a snapshot of the spool's state.
type Stats struct {
	Depth    uint64 // records neither acknowledged nor dropped (numbers lost to corruption included)
	Bytes    int64  // bytes in segment files, including records not yet written out
	Durable  uint64 // highest fsynced sequence number
	Acked    uint64 // highest acknowledged sequence number
	Dropped  uint64 // unacknowledged records deleted by the bound since the spool was created
	Segments int
}

// segment is one segment file. Its records are first..last; last is first-1
// while it is empty.
type segment struct {
	first, last uint64
	size        int64 // including bytes still in the append buffer
	path        string
}

// Spool is an on-disk write-ahead buffer. See the package doc.
type Spool struct {
	opts Options
	lock *os.File

	// syncMu serialises group commits (and Close).
	syncMu sync.Mutex
	// metaMu serialises meta file writes; it is taken before mu.
	metaMu    sync.Mutex
	metaGen   uint64    // generation of the state last written to disk
	metaAt    time.Time // when meta was last written
	readMu    sync.Mutex
	rd        reader // guarded by readMu
	kick      chan struct{}
	stop      chan struct{}
	done      chan struct{}
	durable   atomic.Uint64 // written under mu
	appendBuf []byte        // bytes not yet written to active; under mu

	mu       sync.Mutex
	err      error // sticky; ErrClosed after Close
	closing  bool
	meta     meta
	gen      uint64 // bumped on every change to meta
	next     uint64 // next sequence number
	segs     []*segment
	bytes    int64
	active   *os.File   // last segment, open for append
	sealed   []*os.File // rotated segments awaiting their final fsync and close
	dirDirty bool       // a segment was created since the last group commit
	unsynced int        // records appended since the last group commit began
}

// Open opens the spool in opts.Dir, creating the directory if needed or
// recovering what a previous process left in it (see format.md).
func Open(opts Options) (*Spool, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	lock, err := lockDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	s := &Spool{
		opts: opts,
		lock: lock,
		kick: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	if err := s.recover(); err != nil {
		s.closeFiles()
		return nil, err
	}
	go s.run()
	return s, nil
}

// recover rebuilds the state from the directory and opens a fresh active
// segment. It runs before any other goroutine can see s.
func (s *Spool) recover() error {
	dir := s.opts.Dir
	if err := os.Remove(filepath.Join(dir, metaTmpName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: %w", err)
	}
	firsts, err := listSegments(dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	metaOK := true
	b, err := os.ReadFile(filepath.Join(dir, metaName))
	if err == nil {
		s.meta, err = decodeMeta(b)
	}
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, errBadMeta) {
			return fmt.Errorf("spool: read meta: %w", err)
		}
		// No usable meta. A new directory, or (never by this code) a lost
		// meta file: keep the segments' epoch so the server still dedupes
		// what is sent again, and treat every record in them as unacked.
		metaOK = false
		s.meta = meta{}
	}

	buf := make([]byte, 0, 64<<10)
	for _, first := range firsts {
		path := filepath.Join(dir, segName(first))
		sc, err := scanSegment(path, first, s.meta.epoch, buf)
		if err != nil {
			return fmt.Errorf("spool: recover %s: %w", path, err)
		}
		prevLast := uint64(0)
		if n := len(s.segs); n > 0 {
			prevLast = s.segs[n-1].last
		}
		if !sc.headerOK || sc.last < first || first <= prevLast || sc.last <= s.meta.trim {
			// Torn or foreign header, no valid record, overlapping a
			// predecessor, or everything acknowledged or dropped.
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("spool: recover: %w", err)
			}
			continue
		}
		if s.meta.epoch == 0 {
			s.meta.epoch = sc.epoch
			s.meta.trim = first - 1
			s.meta.acked = first - 1
		}
		if err := truncateAndSync(path, sc.end, sc.size); err != nil {
			return fmt.Errorf("spool: recover %s: %w", path, err)
		}
		s.segs = append(s.segs, &segment{first: first, last: sc.last, size: sc.end, path: path})
		s.bytes += sc.end
	}
	if s.meta.epoch == 0 {
		s.meta.epoch = uint64(max(s.opts.Now().UnixNano(), 1))
	}
	if !metaOK {
		if err := writeMeta(dir, s.meta); err != nil {
			return err
		}
	}
	// Numbers below any segment's first one were given out, even if that
	// segment turned out empty or corrupt: never reuse them. None of these
	// overflows: trim and every record are at most maxSeq.
	s.next = s.meta.trim + 1
	if n := len(s.segs); n > 0 {
		s.next = max(s.next, s.segs[n-1].last+1)
	}
	if n := len(firsts); n > 0 {
		s.next = max(s.next, firsts[n-1])
	}
	if err := s.newSegmentLocked(); err != nil {
		return err
	}
	// The new segment and any removals must be on disk before anything in
	// them counts as durable.
	if err := syncDir(dir); err != nil {
		return err
	}
	s.dirDirty = false
	s.durable.Store(s.next - 1)
	return nil
}

// truncateAndSync cuts a segment to its valid length (a torn or corrupt
// tail) and fsyncs it: records found after a crash may only have reached the
// page cache, and they are about to be reported durable.
func truncateAndSync(path string, end, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if end < size {
		err = f.Truncate(end)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// newSegmentLocked creates the segment that starts at s.next and makes it the
// active one. The previous active file, if any, goes to s.sealed for the
// committer to fsync and close.
func (s *Spool) newSegmentLocked() error {
	path := filepath.Join(s.opts.Dir, segName(s.next))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("spool: new segment: %w", err)
	}
	if _, err := f.Write(segHeader(s.meta.epoch, s.next)); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("spool: new segment: %w", err)
	}
	if s.active != nil {
		s.sealed = append(s.sealed, s.active)
	}
	s.active = f
	s.segs = append(s.segs, &segment{first: s.next, last: s.next - 1, size: segHeaderSize, path: path})
	s.bytes += segHeaderSize
	s.dirDirty = true
	return nil
}

// flushLocked writes the append buffer to the active segment.
func (s *Spool) flushLocked() error {
	if len(s.appendBuf) == 0 {
		return nil
	}
	_, err := s.active.Write(s.appendBuf)
	s.appendBuf = s.appendBuf[:0]
	if err != nil {
		return s.failLocked(fmt.Errorf("spool: write: %w", err))
	}
	return nil
}

// failLocked makes err sticky and returns it.
func (s *Spool) failLocked(err error) error {
	if s.err == nil {
		s.err = err
	}
	return s.err
}

const flushAt = 256 << 10

// Append adds a record and returns its sequence number. The record is
// durable once Durable() ≥ seq. Append does not keep payload.
func (s *Spool) Append(payload []byte) (seq uint64, err error) {
	if len(payload) > MaxPayload {
		return 0, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(payload))
	}
	size := int64(recHeaderSize + len(payload))
	if segHeaderSize+size > s.opts.MaxBytes {
		return 0, fmt.Errorf("%w: %d bytes exceed MaxBytes", ErrTooLarge, len(payload))
	}
	s.mu.Lock()
	if s.err != nil || s.closing {
		err := s.err
		s.mu.Unlock()
		if err == nil {
			err = ErrClosed
		}
		return 0, err
	}
	if s.next > maxSeq {
		s.mu.Unlock()
		return 0, ErrExhausted
	}
	var doomed []string
	var gen uint64
	act := s.segs[len(s.segs)-1]
	if act.last >= act.first && act.size+size > s.opts.SegmentBytes {
		if err := s.rotateLocked(); err != nil {
			s.mu.Unlock()
			return 0, err
		}
	}
	for s.bytes+size > s.opts.MaxBytes {
		if len(s.segs) == 1 {
			// Only the active segment is left, and it holds records (an
			// empty one always has room, see above): seal it and drop it.
			if err := s.rotateLocked(); err != nil {
				s.mu.Unlock()
				return 0, err
			}
		}
		doomed = append(doomed, s.dropOldestLocked())
		gen = s.gen
	}
	seq = s.next
	s.next++
	s.appendBuf = appendRecord(s.appendBuf, seq, payload)
	act = s.segs[len(s.segs)-1]
	act.last = seq
	act.size += size
	s.bytes += size
	if len(s.appendBuf) >= flushAt {
		if err := s.flushLocked(); err != nil {
			s.mu.Unlock()
			return 0, err
		}
	}
	s.unsynced++
	kick := s.unsynced >= s.opts.SyncEvents
	s.mu.Unlock()
	if kick {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	if doomed != nil {
		// The drop is counted on disk before the files go, so a crash in
		// between neither loses nor double-counts it.
		if err := s.persist(gen); err != nil {
			return seq, err
		}
		removeAll(doomed)
	}
	return seq, nil
}

func (s *Spool) rotateLocked() error {
	if err := s.flushLocked(); err != nil {
		return err
	}
	if err := s.newSegmentLocked(); err != nil {
		return s.failLocked(err)
	}
	return nil
}

// dropOldestLocked forgets the oldest segment, counting its unacknowledged
// records as dropped, and returns its path for removal once the new state is
// persisted. The caller ensures it is not the active segment.
func (s *Spool) dropOldestLocked() string {
	old := s.segs[0]
	s.segs = s.segs[1:]
	s.bytes -= old.size
	if old.last > s.meta.trim {
		s.meta.dropped += old.last - max(s.meta.trim, old.first-1)
		s.meta.trim = old.last
	}
	s.gen++
	return old.path
}

func removeAll(paths []string) {
	for _, p := range paths {
		// A file that survives (error, or a crash before the removal
		// reaches the disk) only holds records ≤ trim: recovery deletes it.
		os.Remove(p)
	}
}

// persist writes the meta state to disk unless a write of generation gen or
// later already happened.
func (s *Spool) persist(gen uint64) error {
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	if s.metaGen >= gen {
		return nil
	}
	s.mu.Lock()
	m, g := s.meta, s.gen
	s.mu.Unlock()
	if err := writeMeta(s.opts.Dir, m); err != nil {
		s.mu.Lock()
		err = s.failLocked(err)
		s.mu.Unlock()
		return err
	}
	s.metaGen = g
	s.metaAt = time.Now()
	return nil
}

// run is the background group committer.
func (s *Spool) run() {
	defer close(s.done)
	t := time.NewTicker(s.opts.SyncEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.kick:
		}
		s.commit() // a failure is sticky and reported by the next call
		s.persistAcks(false)
	}
}

// persistAcks writes meta when acknowledgements are waiting for it and,
// unless now, AckEvery has passed since it was last written.
func (s *Spool) persistAcks(now bool) error {
	s.metaMu.Lock()
	due := now || time.Since(s.metaAt) >= s.opts.AckEvery
	s.metaMu.Unlock()
	if !due {
		return nil
	}
	s.mu.Lock()
	g := s.gen
	s.mu.Unlock()
	return s.persist(g)
}

// Sync forces a group commit and returns once everything appended before it
// is durable.
func (s *Spool) Sync() error {
	return s.commit()
}

// commit writes out the append buffer, fsyncs every file holding records not
// yet durable, and the directory if a segment was created, then advances
// Durable. Appends continue during the fsyncs.
func (s *Spool) commit() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return err
	}
	if err := s.flushLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	target := s.next - 1
	sealed, active, dirDirty := s.sealed, s.active, s.dirDirty
	s.sealed, s.dirDirty, s.unsynced = nil, false, 0
	s.mu.Unlock()
	if target <= s.durable.Load() && len(sealed) == 0 && !dirDirty {
		return nil
	}

	// Only the committer closes sealed files and only Close (holding
	// syncMu) closes the active one, so none of these is closed under us.
	var err error
	for _, f := range sealed {
		if e := f.Sync(); e != nil && err == nil {
			err = fmt.Errorf("spool: fsync: %w", e)
		}
		f.Close()
	}
	if err == nil {
		if e := active.Sync(); e != nil {
			err = fmt.Errorf("spool: fsync: %w", e)
		}
	}
	if err == nil && dirDirty {
		err = syncDir(s.opts.Dir)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		return s.failLocked(err)
	}
	if target > s.durable.Load() {
		s.durable.Store(target)
	}
	return nil
}

// BootEpoch identifies this spool's numbering: it is chosen (from
// Options.Now, in Unix nanoseconds) when the directory is created and kept
// across restarts.
func (s *Spool) BootEpoch() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.meta.epoch
}

// Durable returns the highest sequence number known to be fsynced.
func (s *Spool) Durable() uint64 {
	return s.durable.Load()
}

// Stats returns a snapshot of the spool's counters.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{
		Depth:    s.next - 1 - s.meta.trim,
		Bytes:    s.bytes,
		Durable:  s.durable.Load(),
		Acked:    s.meta.acked,
		Dropped:  s.meta.dropped,
		Segments: len(s.segs),
	}
}

// Close stops the committer, makes a final group commit and closes the
// files. It returns the first error the spool met.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closing = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	err := errors.Join(s.commit(), s.persistAcks(true))
	s.syncMu.Lock()
	s.readMu.Lock()
	s.mu.Lock()
	s.err = ErrClosed
	s.mu.Unlock()
	s.closeFiles()
	s.readMu.Unlock()
	s.syncMu.Unlock()
	return err
}

func (s *Spool) closeFiles() {
	for _, f := range s.sealed {
		f.Close()
	}
	s.sealed = nil
	if s.active != nil {
		s.active.Close()
	}
	s.rd.close()
	s.lock.Close()
}
