package web

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/cases"
	"github.com/vigil-edr/vigil/internal/store"
)

const casesPageSize = 50

type casesData struct {
	Status, Regime, Assignee string
	Statuses, Regimes        []string
	Cases                    []caseRow
	Older                    string
	CanWrite                 bool
}

type caseRow struct {
	cases.Case
	// Next is the most urgent running clock (due or overdue), if any.
	Next *cases.Deadline
}

// casesPage lists cases, newest first, with their most urgent deadline.
func (s *Server) casesPage(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.opts.Cases == nil {
		return nil, notConfigured("cases")
	}
	q := newQuery(r)
	d := casesData{Status: q.str("status"), Regime: q.str("regime"), Assignee: q.str("assignee"),
		Statuses: caseStatuses, Regimes: caseRegimes, CanWrite: who(r).role.Allows(authz.PermCasesWrite)}
	f := cases.Filter{Assignee: d.Assignee, Limit: casesPageSize, Before: q.before()}
	if q.err != nil {
		return nil, q.err
	}
	if d.Status != "" {
		st, err := cases.ParseStatus(d.Status)
		if err != nil {
			return nil, caseErr(err)
		}
		f.Statuses = []cases.Status{st}
	}
	if d.Regime != "" {
		rg, err := cases.ParseRegime(d.Regime)
		if err != nil {
			return nil, caseErr(err)
		}
		f.Regime = rg
	}
	cs, err := s.opts.Cases.List(r.Context(), f)
	if err != nil {
		return nil, err
	}
	for i := range cs {
		row := caseRow{Case: cs[i]}
		for _, dl := range s.opts.Cases.Deadlines(&cs[i]) {
			if dl.State != cases.DeadlineDue && dl.State != cases.DeadlineOverdue {
				continue
			}
			if row.Next == nil || dl.Due.Before(row.Next.Due) {
				dl := dl
				row.Next = &dl
			}
		}
		d.Cases = append(d.Cases, row)
	}
	if len(cs) == casesPageSize {
		d.Older = "/cases" + queryOf("status", d.Status, "regime", d.Regime, "assignee", d.Assignee,
			"before", strconv.FormatInt(cs[len(cs)-1].ID, 10))
	}
	return d, nil
}

// maxNewCaseAlerts bounds the alerts a case is opened from on the page.
const maxNewCaseAlerts = 100

type newCaseData struct {
	Alerts   []alert.Alert
	Missing  []int64
	IDs      string // the alert ids, comma separated
	Title    string
	Levels   []string
	Error    string
	CanWrite bool
}

// newCasePage is the form that opens a case from one or more alerts
// (/cases/new?alert=1&alert=2, linked from the alert pages).
func (s *Server) newCasePage(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.opts.Cases == nil || s.opts.Alerts == nil {
		return nil, notConfigured("cases")
	}
	d := newCaseData{Levels: caseSeverities, CanWrite: who(r).role.Allows(authz.PermCasesWrite)}
	ids := r.URL.Query()["alert"]
	if len(ids) > maxNewCaseAlerts {
		return nil, errorf(CodeBadRequest, "at most %d alerts", maxNewCaseAlerts)
	}
	seen := map[int64]bool{}
	for _, v := range ids {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return nil, errorf(CodeBadRequest, "alert must be an alert id")
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		a, err := s.opts.Alerts.GetAlert(r.Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			d.Missing = append(d.Missing, id)
			continue
		}
		if err != nil {
			return nil, err
		}
		d.Alerts = append(d.Alerts, *a)
		if d.IDs != "" {
			d.IDs += ","
		}
		d.IDs += strconv.FormatInt(id, 10)
	}
	if len(d.Alerts) > 0 {
		d.Title = d.Alerts[0].RuleTitle + " on " + d.Alerts[0].Host
		if len(d.Alerts) > 1 {
			d.Title += " and " + strconv.Itoa(len(d.Alerts)-1) + " more"
		}
	}
	return d, nil
}

type caseData struct {
	Case      *cases.Case
	Deadlines []cases.Deadline
	Alerts    []alert.Alert
	Comments  []cases.Comment
	Evidence  []cases.Evidence
	Timeline  []cases.Entry
	Statuses  []string
	Levels    []string
	Notices   []cases.Notice
	CanWrite  bool
	MaxFile   int64
}

// maxCaseAlertsShown bounds the alert table of a case page.
const maxCaseAlertsShown = 100

// casePage shows a case: its fields and regulatory clocks, alerts,
// comments, evidence and timeline, with the forms that change them through
// the API (forms.js).
func (s *Server) casePage(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := s.caseID(r)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	c, err := s.opts.Cases.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(CodeNotFound, "no such case")
	}
	if err != nil {
		return nil, err
	}
	d := caseData{Case: c, Deadlines: s.opts.Cases.Deadlines(c), Statuses: caseStatuses, Levels: caseSeverities,
		CanWrite: who(r).role.Allows(authz.PermCasesWrite), MaxFile: s.opts.Cases.MaxFileBytes(),
		Notices: []cases.Notice{cases.NoticeGDPR, cases.NoticeNIS2Warning, cases.NoticeNIS2Notice, cases.NoticeNIS2FinalReport}}
	if s.opts.Alerts != nil {
		for _, aid := range c.AlertIDs[:min(len(c.AlertIDs), maxCaseAlertsShown)] {
			a, err := s.opts.Alerts.GetAlert(ctx, aid)
			if errors.Is(err, store.ErrNotFound) {
				d.Alerts = append(d.Alerts, alert.Alert{ID: aid, RuleTitle: "(alert no longer stored)"})
				continue
			}
			if err != nil {
				return nil, err
			}
			d.Alerts = append(d.Alerts, *a)
		}
	}
	if d.Comments, err = s.opts.Cases.Comments(ctx, id); err != nil {
		return nil, err
	}
	if d.Evidence, err = s.opts.Cases.Evidence(ctx, id); err != nil {
		return nil, err
	}
	if d.Timeline, err = s.opts.Cases.Timeline(ctx, id); err != nil {
		return nil, err
	}
	return d, nil
}

// queryOf is the template function query, for Go code.
func queryOf(kv ...string) string {
	return templateFuncs["query"].(func(...string) string)(kv...)
}
