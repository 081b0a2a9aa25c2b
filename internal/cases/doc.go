// Package cases manages incidents: a case is opened from one or more alerts
// (more can be added later) and has a title, a severity, an assignee, a
// status moved through an explicit state machine recording who and when,
// comments, evidence and a timeline. A case can be marked as a
// personal-data breach (GDPR) and as a significant incident (NIS2); it then
// shows its notification deadlines, and it renders an incident report as
// one self-contained HTML document.
//
// Server-side packages may import cases; agents must not. The package
// declares the storage it needs (Store) and never imports a backend;
// store/sqlite implements it.
//
// # States
//
// open → in_progress | closed; in_progress → resolved | closed;
// resolved → closed | in_progress (reopen); closed → in_progress (reopen).
// Resolving, closing and reopening need a reason. Every change is a
// timeline entry with the actor and the time.
//
// # Evidence
//
// Evidence refers to an alert, an event or a host, or is an uploaded file.
// Files are stored by their SHA-256 (content addressing: the same bytes are
// stored once, whichever cases hold them) with a size limit
// (Options.MaxFileBytes, 32 MiB by default). The name an uploader gives is
// a label only: it is validated like any other text and never used as a
// path; a file is fetched by case and hash.
//
// # Regulatory clocks: how the texts are read
//
// All clocks are computed in UTC from instants, so daylight-saving changes
// do not move them (72 hours are 72 elapsed hours); only the display is in
// a time zone.
//
// GDPR (Regulation (EU) 2016/679) Art. 33(1): the controller notifies the
// supervisory authority "without undue delay and, where feasible, not later
// than 72 hours after having become aware of" the personal data breach; a
// notification made later "shall be accompanied by reasons for the delay".
// The clock is BreachAwareAt + 72 h. A notification sent after that is
// shown as sent_late, not met, because it owes reasons.
//
// NIS2 (Directive (EU) 2022/2555) Art. 23(4), for a significant incident:
//   - (a) an early warning "without undue delay and in any event within 24
//     hours of becoming aware": NIS2AwareAt + 24 h;
//   - (b) an incident notification "without undue delay and in any event
//     within 72 hours of becoming aware": NIS2AwareAt + 72 h;
//   - (c) an intermediate report only "upon the request of a CSIRT or ...
//     the competent authority": no clock;
//   - (d) a final report "not later than one month after the submission of
//     the incident notification under point (b)". The anchor is the time
//     the incident notification was actually submitted (marked sent), not
//     the awareness time and not the (b) deadline: until (b) is marked sent
//     the final report's clock has not started (state waiting), and a late
//     notification moves the final report later with it.
//   - (e) when the incident is still ongoing at (d)'s deadline, a progress
//     report is due then and the final report within one month of the
//     incident's handling; that case is not modelled: the clock shown is
//     (d)'s.
//
// The trust-service-provider derogation in Art. 23(4) (the notification of
// (b) within 24 hours) is not modelled.
//
// "Becoming aware" is a fact the organisation records, not something Vigil
// can observe: marking a case under a regime records the awareness time
// (now, or a time given); changing it later needs a reason, and the old and
// new times, the actor and the reason go into the timeline and the audit
// log. Sent times are recorded the same way. Unmarking a regime (it was not
// a breach after all) stops its clocks but keeps the recorded sent times: a
// notification that was sent stays a fact, and shows again if the case is
// marked once more (with a new awareness time).
//
// Counting: Regulation (EEC, Euratom) No 1182/71 (periods, dates and time
// limits) would let an hour period start at the beginning of the next hour,
// a month period end at the end of the day, and move a deadline falling on
// a weekend or holiday to the next working day. Vigil does not extend
// deadlines that way: it shows the earliest reading (exactly 24 or 72 hours
// after the instant; one month is the same time of day on the same date of
// the next month in UTC, or that month's last day when it has no such
// date), so a deadline shown is never later than the legal one.
//
// # Concurrency
//
// A Service is safe for concurrent use. Each change reads the case,
// validates the edit and writes it with a compare-and-set on the case's
// version, so of two concurrent changes the later fails with
// store.ErrConflict instead of overwriting the first. A change and its
// timeline entries are one transaction. The audit log (Options.Audit) is
// written after the commit; if it fails the change stands and the error
// says so.
//
// # Untrusted text
//
// Rule titles, host names, user names, command lines and file names come
// from endpoints and rule authors and may be hostile. The service stores
// them as given (after UTF-8 and length checks on what users type); the
// report passes every one of them to html/template as a plain string, so
// each renders as inert text, and the report has no scripts, no external
// resources and a Content-Security-Policy (ReportCSP) that allows only its
// own inline style block.
package cases
