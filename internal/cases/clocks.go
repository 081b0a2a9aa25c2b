package cases

import "time"

// DeadlineState is where a notice stands against its deadline.
type DeadlineState string

// Deadline states.
const (
	DeadlineMet     DeadlineState = "met"       // sent at or before the deadline
	DeadlineLate    DeadlineState = "sent_late" // sent, after the deadline
	DeadlineDue     DeadlineState = "due"       // not sent; time left
	DeadlineOverdue DeadlineState = "overdue"   // not sent; the deadline has passed
	DeadlineWaiting DeadlineState = "waiting"   // the clock has not started (see Deadline.Basis)
)

// Deadline is one regulatory clock of a case at a given moment.
type Deadline struct {
	Notice Notice
	Title  string // what is owed, to whom
	Basis  string // the rule, as the package doc reads it
	Anchor time.Time
	Due    time.Time // zero while waiting
	Sent   time.Time // zero: not marked sent
	State  DeadlineState
	// Left is Due minus now for a due notice; for an overdue one it is
	// negative (how long ago the deadline passed); zero otherwise.
	Left time.Duration
}

// The clocks, as durations from their anchors (see the package doc).
const (
	GDPRNotifyWithin  = 72 * time.Hour
	NIS2WarningWithin = 24 * time.Hour
	NIS2NoticeWithin  = 72 * time.Hour
)

// Deadlines returns the clocks a case runs at now: the GDPR one when it is
// marked as a personal-data breach, the three NIS2 ones when it is marked as
// a significant incident. All times are UTC.
func Deadlines(c *Case, now time.Time) []Deadline {
	now = now.UTC()
	var out []Deadline
	if c.Breach {
		out = append(out, clock(c, NoticeGDPR, now, c.BreachAwareAt, GDPRNotifyWithin,
			"Notify the personal data breach to the supervisory authority (GDPR Art. 33(1))",
			"not later than 72 hours after becoming aware of the breach; a later notification must give the reasons for the delay"))
	}
	if c.NIS2 {
		out = append(out,
			clock(c, NoticeNIS2Warning, now, c.NIS2AwareAt, NIS2WarningWithin,
				"Early warning to the CSIRT or competent authority (NIS2 Art. 23(4)(a))",
				"within 24 hours of becoming aware of the significant incident"),
			clock(c, NoticeNIS2Notice, now, c.NIS2AwareAt, NIS2NoticeWithin,
				"Incident notification to the CSIRT or competent authority (NIS2 Art. 23(4)(b))",
				"within 72 hours of becoming aware of the significant incident"))
		final := Deadline{
			Notice: NoticeNIS2FinalReport,
			Title:  "Final report to the CSIRT or competent authority (NIS2 Art. 23(4)(d))",
			Basis:  "not later than one month after the submission of the incident notification",
			Sent:   c.Sent[NoticeNIS2FinalReport],
		}
		if notified, ok := c.Sent[NoticeNIS2Notice]; ok {
			final.Anchor = notified
			final.Due = AddMonth(notified)
			final.State, final.Left = standing(final.Due, final.Sent, now)
		} else {
			final.Basis += "; the clock starts when the incident notification is marked sent"
			final.State = DeadlineWaiting
			if !final.Sent.IsZero() {
				final.State = DeadlineMet // sent before it was owed
			}
		}
		out = append(out, final)
	}
	return out
}

func clock(c *Case, n Notice, now, aware time.Time, within time.Duration, title, basis string) Deadline {
	d := Deadline{Notice: n, Title: title, Basis: basis, Anchor: aware, Sent: c.Sent[n]}
	if aware.IsZero() {
		d.State = DeadlineWaiting
		d.Basis += "; no awareness time is recorded"
		return d
	}
	d.Due = aware.UTC().Add(within)
	d.State, d.Left = standing(d.Due, d.Sent, now)
	return d
}

func standing(due, sent, now time.Time) (DeadlineState, time.Duration) {
	switch {
	case !sent.IsZero() && !sent.After(due):
		return DeadlineMet, 0
	case !sent.IsZero():
		return DeadlineLate, 0
	case now.After(due):
		return DeadlineOverdue, due.Sub(now)
	}
	return DeadlineDue, due.Sub(now)
}

// AddMonth returns the same time of day on the same date of the next month
// in UTC, or on that month's last day when it has no such date (31 January
// → 28 or 29 February). See the package doc for why this reading is the
// conservative one.
func AddMonth(t time.Time) time.Time {
	t = t.UTC()
	y, m, d := t.Date()
	first := time.Date(y, m+1, 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(d, last)-1)
}
