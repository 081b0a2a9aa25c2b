// Package audit is Vigil's tamper-evident record of every state change: who
// did what to which object, when and from where. Entries form a hash chain
// (format.md): each entry's hash covers the previous entry's hash and the
// entry's own canonical bytes, and the store keeps a head checkpoint (the
// last sequence number and hash) in the same transaction as each append.
// Verify re-reads the log and names the first entry that was edited,
// deleted, moved or cut off the end.
//
// What the chain proves: anyone who changes, removes or reorders stored
// entries without recomputing every later hash and the checkpoint is found
// out. Someone able to rewrite the whole database can recompute them; to
// catch that too, keep the head Verify prints somewhere else and pass it back
// (vigil audit verify --head SEQ:HASH).
//
// Server-side packages and cmd/vigil import audit; agents must not. It
// declares the Store it needs; store/sqlite implements it.
//
// # Concurrency
//
// A Log is safe for concurrent use. The order of entries is the order in
// which Store.AppendAudit commits them; the store serialises appends (also
// across processes, as when the CLI adds a user while the server runs).
package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Entry is one audit record.
type Entry struct {
	Seq    int64     // 1, 2, 3, … in append order; set by the store
	At     time.Time // UTC, nanoseconds
	Actor  string    // "user:alice", "token:ci", "cli:root", "system"
	Source string    // the client's IP address, or "local" for the CLI
	Action string    // dotted verb: "alert.state", "user.add", "login.fail"
	Target string    // the object: "alert:42", "user:bob"
	Detail string    // what changed, in words or key=value pairs
	// PrevHash is the previous entry's Hash (32 zero bytes for the first);
	// Hash is SHA-256 over the domain tag, PrevHash and Canonical. Both are
	// set by Seal, which the store calls inside its append transaction.
	PrevHash []byte
	Hash     []byte
}

// Field limits: longer text is cut (at a rune boundary, marked with "…"),
// invalid UTF-8 is replaced, so any caller input can be recorded.
const (
	maxShort  = 256
	maxDetail = 4096
)

// HashLen is the length of PrevHash and Hash.
const HashLen = sha256.Size

// domain separates these hashes from any other SHA-256 use.
const domain = "vigil-audit-v1\x00"

// Canonical is the entry's byte encoding that its hash covers (format.md):
// the sequence number and time as 8-byte big-endian integers, then each text
// field as a 4-byte big-endian length and its bytes.
func (e *Entry) Canonical() []byte {
	var b []byte
	b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(e.At.UnixNano()))
	for _, s := range []string{e.Actor, e.Source, e.Action, e.Target, e.Detail} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}

// Compute returns the hash an entry with these contents and prev must carry.
func (e *Entry) Compute(prev []byte) []byte {
	h := sha256.New()
	h.Write([]byte(domain))
	h.Write(prev)
	h.Write(e.Canonical())
	return h.Sum(nil)
}

// Seal sets e's Seq, PrevHash and Hash to follow head. Stores call it inside
// the transaction that appends e and advances the head.
func Seal(e *Entry, head Head) {
	e.Seq = head.Seq + 1
	e.PrevHash = head.hash()
	e.Hash = e.Compute(e.PrevHash)
}

// Clean makes e recordable: UTC time truncated to what the store keeps,
// valid UTF-8, bounded lengths.
func (e *Entry) Clean() {
	e.At = e.At.UTC()
	e.Actor = clip(e.Actor, maxShort)
	e.Source = clip(e.Source, maxShort)
	e.Action = clip(e.Action, maxShort)
	e.Target = clip(e.Target, maxShort)
	e.Detail = clip(e.Detail, maxDetail)
}

func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Head is the position of the last entry: the checkpoint the store keeps
// next to the log. The zero Head is the empty log.
type Head struct {
	Seq  int64
	Hash []byte
}

func (h Head) hash() []byte {
	if h.Seq == 0 {
		return make([]byte, HashLen)
	}
	return h.Hash
}

// String is "SEQ:HEX", the form ParseHead reads.
func (h Head) String() string { return strconv.FormatInt(h.Seq, 10) + ":" + hex.EncodeToString(h.Hash) }

// ParseHead reads "SEQ:HEX" as printed by Head.String.
func ParseHead(s string) (Head, error) {
	seq, hx, ok := strings.Cut(s, ":")
	n, err := strconv.ParseInt(seq, 10, 64)
	if !ok || err != nil || n < 1 {
		return Head{}, fmt.Errorf("audit head %q: want SEQ:HASH as printed by vigil audit verify", s)
	}
	h, err := hex.DecodeString(hx)
	if err != nil || len(h) != HashLen {
		return Head{}, fmt.Errorf("audit head %q: the hash must be %d hex digits", s, 2*HashLen)
	}
	return Head{Seq: n, Hash: h}, nil
}

// Store keeps the log. Implementations must serialise appends.
type Store interface {
	// AppendAudit reads the head, calls Seal(e, head), stores e and the
	// new head in one durable transaction.
	AppendAudit(ctx context.Context, e *Entry) error
	// AuditEntries returns up to limit entries with Seq > after, by Seq.
	AuditEntries(ctx context.Context, after int64, limit int) ([]Entry, error)
	// AuditHead returns the stored checkpoint (zero for an empty log).
	AuditHead(ctx context.Context) (Head, error)
}

// Log records entries.
type Log struct {
	store Store
	now   func() time.Time
}

// New returns a Log over s; now defaults to time.Now.
func New(s Store, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{store: s, now: now}
}

// Record appends e, stamping At if it is zero. It returns when e is durable.
func (l *Log) Record(ctx context.Context, e Entry) error {
	if e.At.IsZero() {
		e.At = l.now()
	}
	e.Clean()
	if err := l.store.AppendAudit(ctx, &e); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// Entries reads entries after seq, for display.
func (l *Log) Entries(ctx context.Context, after int64, limit int) ([]Entry, error) {
	return l.store.AuditEntries(ctx, after, limit)
}

// Problem kinds Verify reports.
const (
	ProblemEdited    = "edited"    // the entry's contents do not match its hash
	ProblemMissing   = "missing"   // sequence numbers are skipped: entries were deleted
	ProblemReordered = "reordered" // the entry is intact but stored in another position
	ProblemBroken    = "broken"    // the entry does not follow its predecessor (which was edited or deleted)
	ProblemTruncated = "truncated" // entries after the last stored one are gone (checkpoint or pinned head)
	ProblemHead      = "head"      // the checkpoint or pinned head disagrees with the entry it names
)

// VerifyError is a failed verification: the first problem found.
type VerifyError struct {
	Seq     int64 // the entry concerned (for missing: the first missing)
	Problem string
	Detail  string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("audit log entry %d: %s: %s", e.Seq, e.Problem, e.Detail)
}

// ErrTampered matches every *VerifyError with errors.Is.
var ErrTampered = errors.New("audit log tampered with")

// Is makes errors.Is(err, ErrTampered) true.
func (e *VerifyError) Is(target error) bool { return target == ErrTampered }

// Verify reads the whole log and checks the chain, the sequence and the
// stored checkpoint, and if pin is non-nil that the entry pin names is still
// there with pin's hash. It returns the head it verified. It keeps one hash
// per entry in memory (32 bytes each) to tell a moved entry from an edited
// one.
func Verify(ctx context.Context, s Store, pin *Head) (Head, error) {
	var all []Entry // hashes only, for diagnosis
	prev := Head{}
	for {
		page, err := s.AuditEntries(ctx, prev.Seq, 1000)
		if err != nil {
			return Head{}, err
		}
		for i := range page {
			e := &page[i]
			if e.Seq != prev.Seq+1 {
				if e.Seq > prev.Seq+1 {
					return Head{}, &VerifyError{Seq: prev.Seq + 1, Problem: ProblemMissing,
						Detail: fmt.Sprintf("entries %d to %d are missing (deleted)", prev.Seq+1, e.Seq-1)}
				}
				return Head{}, &VerifyError{Seq: e.Seq, Problem: ProblemBroken, Detail: "sequence numbers go backwards"}
			}
			intact := bytes.Equal(e.Compute(e.PrevHash), e.Hash)
			follows := bytes.Equal(e.PrevHash, prev.hash())
			if !intact || !follows {
				return Head{}, diagnose(ctx, s, e, all, intact)
			}
			all = append(all, Entry{Seq: e.Seq, PrevHash: e.PrevHash, Hash: e.Hash})
			prev = Head{Seq: e.Seq, Hash: e.Hash}
		}
		if len(page) < 1000 {
			break
		}
	}
	check := func(what string, h Head) error {
		switch {
		case h.Seq == 0:
			return nil
		case h.Seq > prev.Seq:
			return &VerifyError{Seq: prev.Seq + 1, Problem: ProblemTruncated,
				Detail: fmt.Sprintf("the %s names entry %d but the log ends at %d: entries %d to %d were removed", what, h.Seq, prev.Seq, prev.Seq+1, h.Seq)}
		case !bytes.Equal(all[h.Seq-1].Hash, h.Hash):
			return &VerifyError{Seq: h.Seq, Problem: ProblemHead,
				Detail: fmt.Sprintf("the %s's hash differs from the stored entry's: the log was rewritten from here or earlier", what)}
		}
		return nil
	}
	cp, err := s.AuditHead(ctx)
	if err != nil {
		return Head{}, err
	}
	if err := check("checkpoint", cp); err != nil {
		return Head{}, err
	}
	if cp.Seq != prev.Seq {
		return Head{}, &VerifyError{Seq: cp.Seq + 1, Problem: ProblemHead,
			Detail: fmt.Sprintf("entries %d to %d were added without advancing the checkpoint", cp.Seq+1, prev.Seq)}
	}
	if pin != nil {
		if err := check("pinned head", *pin); err != nil {
			return Head{}, err
		}
	}
	return prev, nil
}

// diagnose explains why entry e does not verify, given the verified entries
// before it. An entry whose own hash is right but that carries another
// entry's predecessor hash, or whose contents hash correctly at another
// position, was moved; otherwise it was edited, or its predecessor was.
func diagnose(ctx context.Context, s Store, e *Entry, before []Entry, intact bool) error {
	// Where does each hash sit now? Read the rest of the log.
	pos := map[string]int64{}
	for _, x := range before {
		pos[string(x.Hash)] = x.Seq
	}
	rest := []Entry{*e}
	for after := e.Seq; ; {
		page, err := s.AuditEntries(ctx, after, 1000)
		if err != nil {
			return err
		}
		rest = append(rest, page...)
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].Seq
	}
	for _, x := range rest {
		pos[string(x.Hash)] = x.Seq
	}
	zero := string(make([]byte, HashLen))
	// The position an entry was written at: one more than its
	// predecessor's, found by following PrevHash links back.
	written := func(x *Entry) (int64, bool) {
		if string(x.PrevHash) == zero {
			return 1, true
		}
		if p, ok := pos[string(x.PrevHash)]; ok {
			// The predecessor's own position may have moved too;
			// good enough to name the neighbour.
			return p + 1, true
		}
		return 0, false
	}
	if intact {
		w, ok := written(e)
		if ok && w != e.Seq {
			return &VerifyError{Seq: e.Seq, Problem: ProblemReordered,
				Detail: fmt.Sprintf("the entry stored here was written after the entry now at %d", w-1)}
		}
		return &VerifyError{Seq: e.Seq, Problem: ProblemBroken,
			Detail: fmt.Sprintf("it does not follow entry %d: that entry was edited or replaced", e.Seq-1)}
	}
	// Contents do not hash at this position: try the positions around it
	// (a swap of sequence numbers) before calling it an edit.
	for _, seq := range []int64{e.Seq - 1, e.Seq + 1, e.Seq - 2, e.Seq + 2} {
		x := *e
		x.Seq = seq
		if seq > 0 && bytes.Equal(x.Compute(e.PrevHash), e.Hash) {
			return &VerifyError{Seq: e.Seq, Problem: ProblemReordered,
				Detail: fmt.Sprintf("the entry stored here was written as entry %d", seq)}
		}
	}
	return &VerifyError{Seq: e.Seq, Problem: ProblemEdited, Detail: "its contents do not match its hash"}
}
