package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/cases"
	"github.com/vigil-edr/vigil/internal/store"
)

func newCase(t *testing.T, b Backend, title string, alertIDs ...int64) *cases.Case {
	t.Helper()
	c := &cases.Case{Title: title, Severity: cases.SeverityHigh, Status: cases.StatusOpen, CreatedBy: "ann",
		CreatedAt: t0, UpdatedAt: t0, StatusBy: "ann", StatusAt: t0, AlertIDs: alertIDs,
		Sent: map[cases.Notice]time.Time{}}
	entries := []cases.Entry{{At: t0, Actor: "ann", Kind: cases.EntryCreated, Detail: "opened " + title}}
	must(t, b.CreateCase(ctx(t), c, entries))
	if c.ID == 0 || c.Version != 1 || entries[0].CaseID != c.ID {
		t.Fatalf("CreateCase set ID %d, Version %d, entry case %d", c.ID, c.Version, entries[0].CaseID)
	}
	return c
}

func caseIDs(cs []cases.Case) []int64 {
	out := []int64{}
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

var caseTests = []test{
	{"CreateGet", func(t *testing.T, b Backend) {
		c := newCase(t, b, "Ransomware on web-1", 7, 3, 9)
		got, err := b.GetCase(ctx(t), c.ID)
		must(t, err)
		if got.Title != c.Title || got.Severity != cases.SeverityHigh || got.Status != cases.StatusOpen ||
			got.CreatedBy != "ann" || got.StatusBy != "ann" || got.Version != 1 || got.Breach || got.NIS2 ||
			!slices.Equal(got.AlertIDs, []int64{7, 3, 9}) || len(got.Sent) != 0 {
			t.Errorf("GetCase = %+v", got)
		}
		sameTime(t, "CreatedAt", got.CreatedAt, t0)
		sameTime(t, "StatusAt", got.StatusAt, t0)
		if !got.BreachAwareAt.IsZero() {
			t.Errorf("BreachAwareAt = %v, want zero", got.BreachAwareAt)
		}
		_, err = b.GetCase(ctx(t), c.ID+100)
		wantErr(t, err, store.ErrNotFound)
		tl, err := b.CaseTimeline(ctx(t), c.ID)
		must(t, err)
		if len(tl) != 1 || tl[0].Kind != cases.EntryCreated || tl[0].Actor != "ann" || tl[0].CaseID != c.ID || tl[0].ID == 0 {
			t.Errorf("timeline = %+v", tl)
		}
	}},
	{"UpdateCompareAndSet", func(t *testing.T, b Backend) {
		c := newCase(t, b, "c", 1)
		c.Status, c.StatusBy, c.StatusAt, c.Reason = cases.StatusInProgress, "bob", t0.Add(time.Minute), "taking it"
		c.Assignee, c.Severity, c.Title = "bob", cases.SeverityCritical, "c2"
		c.Breach, c.BreachAwareAt = true, t0.Add(-time.Hour)
		c.NIS2, c.NIS2AwareAt = true, t0.Add(-2*time.Hour)
		c.Sent[cases.NoticeGDPR] = t0.Add(time.Hour)
		c.Sent[cases.NoticeNIS2Warning] = t0.Add(30 * time.Minute)
		c.AlertIDs = append(c.AlertIDs, 5, 1) // 1 repeats: ignored
		c.UpdatedAt = t0.Add(time.Minute)
		must(t, b.UpdateCase(ctx(t), c, []cases.Entry{
			{At: t0.Add(time.Minute), Actor: "bob", Kind: cases.EntryStatus, Detail: "open → in_progress"},
			{At: t0.Add(time.Minute), Actor: "bob", Kind: cases.EntryAssignee, Detail: "assigned to bob"},
		}))
		if c.Version != 2 {
			t.Errorf("Version after update = %d, want 2", c.Version)
		}
		got, err := b.GetCase(ctx(t), c.ID)
		must(t, err)
		if got.Status != cases.StatusInProgress || got.StatusBy != "bob" || got.Reason != "taking it" ||
			got.Assignee != "bob" || got.Severity != cases.SeverityCritical || got.Title != "c2" ||
			!got.Breach || !got.NIS2 || got.Version != 2 || !slices.Equal(got.AlertIDs, []int64{1, 5}) || len(got.Sent) != 2 {
			t.Errorf("after update = %+v", got)
		}
		sameTime(t, "BreachAwareAt", got.BreachAwareAt, t0.Add(-time.Hour))
		sameTime(t, "NIS2AwareAt", got.NIS2AwareAt, t0.Add(-2*time.Hour))
		sameTime(t, "Sent[gdpr]", got.Sent[cases.NoticeGDPR], t0.Add(time.Hour))
		sameTime(t, "UpdatedAt", got.UpdatedAt, t0.Add(time.Minute))

		// A write from the version before loses.
		stale := *got
		stale.Version = 1
		stale.Title = "stale"
		wantErr(t, b.UpdateCase(ctx(t), &stale, nil), store.ErrConflict)
		// Withdrawing a sent mark removes it.
		delete(got.Sent, cases.NoticeGDPR)
		must(t, b.UpdateCase(ctx(t), got, nil))
		again, err := b.GetCase(ctx(t), c.ID)
		must(t, err)
		if again.Title != "c2" || len(again.Sent) != 1 || again.Version != 3 {
			t.Errorf("after stale write and withdrawal = %+v", again)
		}
		missing := *again
		missing.ID = c.ID + 100
		wantErr(t, b.UpdateCase(ctx(t), &missing, nil), store.ErrNotFound)

		tl, err := b.CaseTimeline(ctx(t), c.ID)
		must(t, err)
		var kinds []cases.EntryKind
		for _, e := range tl {
			kinds = append(kinds, e.Kind)
		}
		if !slices.Equal(kinds, []cases.EntryKind{cases.EntryCreated, cases.EntryStatus, cases.EntryAssignee}) {
			t.Errorf("timeline kinds = %v", kinds)
		}
	}},
	{"ConcurrentUpdatesOneWins", func(t *testing.T, b Backend) {
		c := newCase(t, b, "race", 1)
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mine := *c
				mine.Assignee = fmt.Sprint("analyst-", i)
				errs[i] = b.UpdateCase(ctx(t), &mine, []cases.Entry{{At: t0, Actor: mine.Assignee, Kind: cases.EntryAssignee}})
			}()
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("unexpected error %v", err)
			}
		}
		tl, err := b.CaseTimeline(ctx(t), c.ID)
		must(t, err)
		if wins != 1 || len(tl) != 2 {
			t.Errorf("%d writers won, %d timeline entries; want 1 and 2 (the losers' entries must not be stored)", wins, len(tl))
		}
	}},
	{"ListFilters", func(t *testing.T, b Backend) {
		a := newCase(t, b, "a", 1)
		bb := newCase(t, b, "b", 2, 3)
		c := newCase(t, b, "c", 3)
		bb.Status, bb.Assignee, bb.Severity, bb.Breach, bb.BreachAwareAt = cases.StatusInProgress, "bob", cases.SeverityLow, true, t0
		must(t, b.UpdateCase(ctx(t), bb, nil))
		c.Status, c.Severity, c.NIS2, c.NIS2AwareAt = cases.StatusClosed, cases.SeverityCritical, true, t0
		must(t, b.UpdateCase(ctx(t), c, nil))
		for _, tc := range []struct {
			name string
			f    cases.Filter
			want []int64
		}{
			{"all", cases.Filter{}, []int64{c.ID, bb.ID, a.ID}},
			{"status", cases.Filter{Statuses: []cases.Status{cases.StatusOpen, cases.StatusClosed}}, []int64{c.ID, a.ID}},
			{"assignee", cases.Filter{Assignee: "bob"}, []int64{bb.ID}},
			{"min severity", cases.Filter{MinSeverity: cases.SeverityHigh}, []int64{c.ID, a.ID}},
			{"gdpr", cases.Filter{Regime: cases.RegimeGDPR}, []int64{bb.ID}},
			{"nis2", cases.Filter{Regime: cases.RegimeNIS2}, []int64{c.ID}},
			{"alert", cases.Filter{AlertID: 3}, []int64{c.ID, bb.ID}},
			{"alert none", cases.Filter{AlertID: 99}, []int64{}},
			{"page", cases.Filter{Limit: 2}, []int64{c.ID, bb.ID}},
			{"next page", cases.Filter{Limit: 2, Before: bb.ID}, []int64{a.ID}},
		} {
			got, err := b.ListCases(ctx(t), tc.f)
			must(t, err)
			if !slices.Equal(caseIDs(got), tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, caseIDs(got), tc.want)
			}
		}
		got, err := b.ListCases(ctx(t), cases.Filter{AlertID: 2})
		must(t, err)
		if len(got) != 1 || !slices.Equal(got[0].AlertIDs, []int64{2, 3}) {
			t.Errorf("listed case alerts = %+v", got)
		}
		if _, err := b.ListCases(ctx(t), cases.Filter{MinSeverity: "huge"}); err == nil {
			t.Error("unknown severity accepted")
		}
	}},
	{"CommentsEvidence", func(t *testing.T, b Backend) {
		c := newCase(t, b, "c", 1)
		cm := &cases.Comment{CaseID: c.ID, Author: "bob", Text: "line 1\nline 2", At: t0.Add(time.Hour)}
		must(t, b.AddCaseComment(ctx(t), cm, cases.Entry{At: cm.At, Actor: "bob", Kind: cases.EntryComment, Detail: "comment"}))
		if cm.ID == 0 {
			t.Fatal("comment ID not set")
		}
		err := b.AddCaseComment(ctx(t), &cases.Comment{CaseID: c.ID + 100, Author: "x", Text: "y", At: t0}, cases.Entry{Kind: cases.EntryComment})
		wantErr(t, err, store.ErrNotFound)
		cs, err := b.CaseComments(ctx(t), c.ID)
		must(t, err)
		if len(cs) != 1 || cs[0].Text != "line 1\nline 2" || cs[0].Author != "bob" {
			t.Errorf("comments = %+v", cs)
		}
		ev := &cases.Evidence{CaseID: c.ID, Kind: cases.EvidenceFile, Ref: sum([]byte("x")), Name: "x.txt", Size: 1,
			Note: "dropped", AddedBy: "bob", AddedAt: t0.Add(2 * time.Hour)}
		must(t, b.AddCaseEvidence(ctx(t), ev, cases.Entry{At: ev.AddedAt, Actor: "bob", Kind: cases.EntryEvidence}))
		host := &cases.Evidence{CaseID: c.ID, Kind: cases.EvidenceHost, Ref: "web-1", AddedBy: "bob", AddedAt: t0}
		must(t, b.AddCaseEvidence(ctx(t), host, cases.Entry{At: t0, Actor: "bob", Kind: cases.EntryEvidence}))
		dup := *host
		wantErr(t, b.AddCaseEvidence(ctx(t), &dup, cases.Entry{Kind: cases.EntryEvidence}), store.ErrConflict)
		wantErr(t, b.AddCaseEvidence(ctx(t), &cases.Evidence{CaseID: c.ID + 100, Kind: cases.EvidenceHost, Ref: "h"},
			cases.Entry{Kind: cases.EntryEvidence}), store.ErrNotFound)
		evs, err := b.CaseEvidence(ctx(t), c.ID)
		must(t, err)
		if len(evs) != 2 || evs[0].ID != ev.ID || evs[0].Name != "x.txt" || evs[0].Size != 1 || evs[0].Note != "dropped" ||
			evs[1].Kind != cases.EvidenceHost {
			t.Errorf("evidence = %+v", evs)
		}
		got, err := b.GetCase(ctx(t), c.ID)
		must(t, err)
		sameTime(t, "UpdatedAt after evidence", got.UpdatedAt, t0.Add(2*time.Hour))
		if got.Version != 1 {
			t.Errorf("comments and evidence changed the version to %d", got.Version)
		}
		tl, err := b.CaseTimeline(ctx(t), c.ID)
		must(t, err)
		if len(tl) != 4 { // created, comment, two evidence; failed adds leave nothing
			t.Errorf("timeline has %d entries, want 4: %+v", len(tl), tl)
		}
	}},
	{"Files", func(t *testing.T, b Backend) {
		data := []byte("MZ\x90\x00 not really a PE \x00\xff")
		s := sum(data)
		must(t, b.PutCaseFile(ctx(t), s, data))
		must(t, b.PutCaseFile(ctx(t), s, data)) // again: no-op
		got, err := b.CaseFile(ctx(t), s)
		must(t, err)
		if string(got) != string(data) {
			t.Errorf("CaseFile = %q", got)
		}
		empty := sum(nil)
		must(t, b.PutCaseFile(ctx(t), empty, nil))
		if got, err := b.CaseFile(ctx(t), empty); err != nil || got == nil || len(got) != 0 {
			t.Errorf("empty file = %q, %v", got, err)
		}
		if err := b.PutCaseFile(ctx(t), sum([]byte("other")), data); err == nil {
			t.Error("a sum that is not the content's was accepted")
		}
		_, err = b.CaseFile(ctx(t), sum([]byte("never stored")))
		wantErr(t, err, store.ErrNotFound)
	}},
}
