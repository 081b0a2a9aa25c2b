package cases_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/audit"
	"github.com/vigil-edr/vigil/internal/cases"
)

var aware = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func h(n float64) time.Duration { return time.Duration(n * float64(time.Hour)) }

func TestGDPRClock(t *testing.T) {
	t.Parallel()
	kolkata := time.FixedZone("IST", 5*3600+1800)
	for _, tc := range []struct {
		name      string
		awareAt   time.Time
		sent      time.Time
		now       time.Time
		wantState cases.DeadlineState
		wantLeft  time.Duration
	}{
		{"just aware", aware, time.Time{}, aware, cases.DeadlineDue, h(72)},
		{"one hour left", aware, time.Time{}, aware.Add(h(71)), cases.DeadlineDue, h(1)},
		{"at the deadline", aware, time.Time{}, aware.Add(h(72)), cases.DeadlineDue, 0},
		{"a nanosecond past", aware, time.Time{}, aware.Add(h(72) + 1), cases.DeadlineOverdue, -1},
		{"a day past", aware, time.Time{}, aware.Add(h(96)), cases.DeadlineOverdue, -h(24)},
		{"sent early", aware, aware.Add(h(5)), aware.Add(h(100)), cases.DeadlineMet, 0},
		{"sent at the deadline", aware, aware.Add(h(72)), aware.Add(h(100)), cases.DeadlineMet, 0},
		{"sent a nanosecond late", aware, aware.Add(h(72) + 1), aware.Add(h(100)), cases.DeadlineLate, 0},
		{"awareness in another zone", aware.In(kolkata), time.Time{}, aware.Add(h(70)), cases.DeadlineDue, h(2)},
		{"now in another zone", aware, time.Time{}, aware.Add(h(70)).In(kolkata), cases.DeadlineDue, h(2)},
		{"sent given in another zone", aware, aware.Add(h(72)).In(kolkata), aware.Add(h(80)), cases.DeadlineMet, 0},
	} {
		c := &cases.Case{Breach: true, BreachAwareAt: tc.awareAt, Sent: map[cases.Notice]time.Time{}}
		if !tc.sent.IsZero() {
			c.Sent[cases.NoticeGDPR] = tc.sent
		}
		ds := cases.Deadlines(c, tc.now)
		if len(ds) != 1 || ds[0].Notice != cases.NoticeGDPR {
			t.Fatalf("%s: deadlines %+v", tc.name, ds)
		}
		d := ds[0]
		if !d.Due.Equal(aware.Add(72*time.Hour)) || d.Due.Location() != time.UTC {
			t.Errorf("%s: due %v, want %v in UTC", tc.name, d.Due, aware.Add(72*time.Hour))
		}
		if d.State != tc.wantState || d.Left != tc.wantLeft {
			t.Errorf("%s: %s with %v left, want %s with %v", tc.name, d.State, d.Left, tc.wantState, tc.wantLeft)
		}
	}
	if ds := cases.Deadlines(&cases.Case{BreachAwareAt: aware}, aware); len(ds) != 0 {
		t.Errorf("an unmarked case has deadlines %+v", ds)
	}
}

func TestNIS2Clocks(t *testing.T) {
	t.Parallel()
	type want struct {
		state cases.DeadlineState
		due   time.Time // zero: none yet
	}
	for _, tc := range []struct {
		name                    string
		sent                    map[cases.Notice]time.Time
		now                     time.Time
		warning, notice, report want
	}{
		{"just aware", nil, aware.Add(h(1)),
			want{cases.DeadlineDue, aware.Add(h(24))}, want{cases.DeadlineDue, aware.Add(h(72))}, want{cases.DeadlineWaiting, time.Time{}}},
		{"warning overdue", nil, aware.Add(h(25)),
			want{cases.DeadlineOverdue, aware.Add(h(24))}, want{cases.DeadlineDue, aware.Add(h(72))}, want{cases.DeadlineWaiting, time.Time{}}},
		{"all on time; final report anchored to the notification", map[cases.Notice]time.Time{
			cases.NoticeNIS2Warning: aware.Add(h(20)), cases.NoticeNIS2Notice: aware.Add(h(50))}, aware.Add(h(60)),
			want{cases.DeadlineMet, aware.Add(h(24))}, want{cases.DeadlineMet, aware.Add(h(72))},
			want{cases.DeadlineDue, time.Date(2026, 12, 26, 12, 0, 0, 0, time.UTC)}},
		{"late notification moves the final report", map[cases.Notice]time.Time{
			cases.NoticeNIS2Warning: aware.Add(h(30)), cases.NoticeNIS2Notice: aware.Add(h(100))}, aware.Add(h(101)),
			want{cases.DeadlineLate, aware.Add(h(24))}, want{cases.DeadlineLate, aware.Add(h(72))},
			want{cases.DeadlineDue, time.Date(2026, 12, 28, 14, 0, 0, 0, time.UTC)}},
		{"final report overdue", map[cases.Notice]time.Time{
			cases.NoticeNIS2Warning: aware.Add(h(1)), cases.NoticeNIS2Notice: aware.Add(h(2))},
			time.Date(2026, 12, 24, 12, 0, 0, 1, time.UTC),
			want{cases.DeadlineMet, aware.Add(h(24))}, want{cases.DeadlineMet, aware.Add(h(72))},
			want{cases.DeadlineOverdue, time.Date(2026, 12, 24, 12, 0, 0, 0, time.UTC)}},
		{"final report met", map[cases.Notice]time.Time{
			cases.NoticeNIS2Warning: aware.Add(h(1)), cases.NoticeNIS2Notice: aware.Add(h(2)),
			cases.NoticeNIS2FinalReport: time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC)},
			time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC),
			want{cases.DeadlineMet, aware.Add(h(24))}, want{cases.DeadlineMet, aware.Add(h(72))},
			want{cases.DeadlineMet, time.Date(2026, 12, 24, 12, 0, 0, 0, time.UTC)}},
	} {
		c := &cases.Case{NIS2: true, NIS2AwareAt: aware, Sent: tc.sent}
		ds := cases.Deadlines(c, tc.now)
		if len(ds) != 3 {
			t.Fatalf("%s: %d deadlines", tc.name, len(ds))
		}
		for i, w := range []want{tc.warning, tc.notice, tc.report} {
			d := ds[i]
			if d.Notice != []cases.Notice{cases.NoticeNIS2Warning, cases.NoticeNIS2Notice, cases.NoticeNIS2FinalReport}[i] {
				t.Errorf("%s: deadline %d is %s", tc.name, i, d.Notice)
			}
			if d.State != w.state || !d.Due.Equal(w.due) {
				t.Errorf("%s: %s is %s due %v, want %s due %v", tc.name, d.Notice, d.State, d.Due, w.state, w.due)
			}
		}
	}
	// Both regimes at once: four clocks, GDPR first.
	c := &cases.Case{Breach: true, BreachAwareAt: aware, NIS2: true, NIS2AwareAt: aware.Add(h(1))}
	if ds := cases.Deadlines(c, aware); len(ds) != 4 || ds[0].Notice != cases.NoticeGDPR || !ds[2].Due.Equal(aware.Add(h(73))) {
		t.Errorf("both regimes: %+v", ds)
	}
}

func TestAddMonth(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"2026-03-10T14:00:00Z", "2026-04-10T14:00:00Z"},
		{"2026-01-31T10:00:00Z", "2026-02-28T10:00:00Z"},
		{"2028-01-31T10:00:00Z", "2028-02-29T10:00:00Z"}, // leap year
		{"2026-03-31T23:59:59.5Z", "2026-04-30T23:59:59.5Z"},
		{"2026-12-15T08:00:00Z", "2027-01-15T08:00:00Z"},
		{"2026-02-28T08:00:00Z", "2026-03-28T08:00:00Z"},
		{"2026-01-31T23:30:00+01:00", "2026-02-28T22:30:00Z"}, // counted in UTC
		{"2026-03-29T00:30:00+01:00", "2026-04-28T23:30:00Z"}, // across the Paris DST change: same UTC time
	} {
		in, err := time.Parse(time.RFC3339Nano, tc.in)
		must(t, err)
		want, err := time.Parse(time.RFC3339Nano, tc.want)
		must(t, err)
		if got := cases.AddMonth(in); !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("AddMonth(%s) = %v, want %v", tc.in, got, want)
		}
	}
}

// TestRegulatoryRecord checks marking, awareness edits with their audit,
// sent marks and their corrections through the service.
func TestRegulatoryRecord(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	c := e.create(e.high)
	paris, err := time.LoadLocation("Europe/Paris")
	must(t, err)

	// Marking records awareness: now by default, or the time given (any zone, stored UTC).
	got, err := e.svc.Update(ctx, c.ID, cases.Change{NIS2: ptr(true)}, "ann")
	must(t, err)
	if !got.NIS2 || !got.NIS2AwareAt.Equal(t0) {
		t.Errorf("NIS2 marked: %v aware %v", got.NIS2, got.NIS2AwareAt)
	}
	given := time.Date(2026, 11, 27, 8, 15, 0, 0, paris) // 07:15 UTC
	got, err = e.svc.Update(ctx, c.ID, cases.Change{Breach: ptr(true), BreachAwareAt: &given}, "ann")
	must(t, err)
	if !got.BreachAwareAt.Equal(given) || got.BreachAwareAt.Location() != time.UTC {
		t.Errorf("breach awareness %v, want %v in UTC", got.BreachAwareAt, given)
	}

	for _, tc := range []struct {
		name string
		ch   cases.Change
		msg  string
	}{
		{"awareness change without a reason", cases.Change{BreachAwareAt: ptr(t0.Add(-h(5)))}, "needs a regulatory reason"},
		{"awareness in the future", cases.Change{BreachAwareAt: ptr(t0.Add(h(1))), RegulatoryReason: "x"}, "in the future"},
		{"awareness zero", cases.Change{BreachAwareAt: &time.Time{}, RegulatoryReason: "x"}, "empty"},
		{"unmark without a reason", cases.Change{NIS2: ptr(false)}, "needs a regulatory reason"},
		{"sent in the future", cases.Change{Sent: map[cases.Notice]time.Time{cases.NoticeGDPR: t0.Add(h(1))}}, "in the future"},
		{"unknown notice", cases.Change{Sent: map[cases.Notice]time.Time{"ccpa": t0}}, "unknown notice"},
		{"reason with control characters", cases.Change{RegulatoryReason: "a\x07"}, "control characters"},
	} {
		_, err := e.svc.Update(ctx, c.ID, tc.ch, "bob")
		if !userError(err) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want a user error containing %q", tc.name, err, tc.msg)
		}
	}

	e.now = t0.Add(h(2))
	earlier := time.Date(2026, 11, 26, 22, 0, 0, 0, time.UTC)
	before := len(e.audit.actions())
	_, err = e.svc.Update(cases.WithAuditSource(ctx, "192.0.2.7"), c.ID,
		cases.Change{BreachAwareAt: &earlier, RegulatoryReason: "the DPO was told by phone the evening before"}, "bob")
	must(t, err)
	tl, err := e.svc.Timeline(ctx, c.ID)
	must(t, err)
	var found bool
	for _, en := range tl {
		if en.Kind == cases.EntryAwareness {
			found = true
			want := "GDPR awareness time changed from 2026-11-27 07:15:00Z to 2026-11-26 22:00:00Z: the DPO was told by phone the evening before"
			if en.Detail != want || en.Actor != "bob" || !en.At.Equal(e.now) {
				t.Errorf("awareness entry %+v, want detail %q by bob at %v", en, want, e.now)
			}
		}
	}
	if !found {
		t.Errorf("no awareness entry in %+v", tl)
	}
	if a := e.audit.actions()[before:]; len(a) != 1 || a[0] != "case.awareness" {
		t.Errorf("audit after the awareness change: %v", a)
	}
	recs := e.audit.entries()
	rec := recs[len(recs)-1]
	if rec.Actor != "bob" || rec.Target != "case:"+itoa(c.ID) || rec.Source != "192.0.2.7" ||
		!strings.Contains(rec.Detail, "2026-11-26 22:00:00Z") || !rec.At.Equal(e.now) {
		t.Errorf("audit record %+v", rec)
	}
	if _, err := audit.Verify(ctx, e.db, nil); err != nil {
		t.Errorf("audit chain: %v", err)
	}

	// Sent marks: first mark needs no reason, a change does, a withdrawal does.
	sent := t0.Add(h(1))
	_, err = e.svc.Update(ctx, c.ID, cases.Change{Sent: map[cases.Notice]time.Time{cases.NoticeGDPR: sent, cases.NoticeNIS2Warning: sent}}, "bob")
	must(t, err)
	if _, err := e.svc.Update(ctx, c.ID, cases.Change{Sent: map[cases.Notice]time.Time{cases.NoticeGDPR: sent.Add(time.Minute)}}, "bob"); !userError(err) {
		t.Errorf("changing a sent time without a reason: %v", err)
	}
	if _, err := e.svc.Update(ctx, c.ID, cases.Change{Sent: map[cases.Notice]time.Time{cases.NoticeGDPR: {}}}, "bob"); !userError(err) {
		t.Errorf("withdrawing a sent mark without a reason: %v", err)
	}
	got, err = e.svc.Update(ctx, c.ID, cases.Change{Sent: map[cases.Notice]time.Time{cases.NoticeGDPR: {}}, RegulatoryReason: "marked on the wrong case"}, "bob")
	must(t, err)
	if _, ok := got.Sent[cases.NoticeGDPR]; ok || got.Sent[cases.NoticeNIS2Warning].IsZero() {
		t.Errorf("after withdrawal: %v", got.Sent)
	}
	ds := e.svc.Deadlines(got)
	if len(ds) != 4 || ds[0].State != cases.DeadlineDue || ds[1].State != cases.DeadlineMet {
		t.Errorf("deadlines %+v", ds)
	}
	// Unmarking GDPR stops its clock; its sent marks cannot be set meanwhile.
	got, err = e.svc.Update(ctx, c.ID, cases.Change{Breach: ptr(false), RegulatoryReason: "no personal data involved"}, "carol")
	must(t, err)
	if got.Breach || len(e.svc.Deadlines(got)) != 3 {
		t.Errorf("after unmarking: breach %v, %d deadlines", got.Breach, len(e.svc.Deadlines(got)))
	}
	if _, err := e.svc.Update(ctx, c.ID, cases.Change{Sent: map[cases.Notice]time.Time{cases.NoticeGDPR: sent}}, "bob"); !userError(err) {
		t.Errorf("sent mark on an unmarked regime: %v", err)
	}
	if _, err := e.svc.Update(ctx, c.ID, cases.Change{BreachAwareAt: &earlier, RegulatoryReason: "x"}, "bob"); !userError(err) {
		t.Errorf("awareness on an unmarked regime: %v", err)
	}
}
