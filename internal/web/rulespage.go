package web

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/overview"
	"github.com/vigil-edr/vigil/internal/ruleset"
	"github.com/vigil-edr/vigil/internal/store"
)

type rulesData struct {
	Q, Kind, State string
	Rules          []ruleRow
	Total          int
	Counts         map[string]int // enabled, disabled, errors
	CanChange      bool
	Back           string // this page with its filters, for the forms
	AlertsSince    time.Time
	HaveAlerts     bool
}

type ruleRow struct {
	ruleset.Info
	Alerts int64 // alerts first seen in the last 24 h
	AvgNS  int64 // mean evaluation cost
}

// rulesPage lists the rules with their health and match counts, searched by
// title, id, tag or path (q), kind and state.
func (s *Server) rulesPage(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.opts.Rules == nil {
		return nil, notConfigured("rules")
	}
	q := newQuery(r)
	d := rulesData{Q: q.str("q"), Kind: q.str("kind"), State: q.str("state"), Counts: map[string]int{},
		CanChange: who(r).role.Allows(authz.PermRulesAdmin), Back: localPath(r.URL.RequestURI())}
	if q.err != nil {
		return nil, q.err
	}
	counts := map[string]int64{}
	if s.opts.Overview != nil {
		now := s.now().UTC()
		d.AlertsSince, d.HaveAlerts = now.Add(-24*time.Hour), true
		sum, err := s.opts.Overview.AlertSummary(r.Context(), overview.Window{Since: d.AlertsSince, Until: now.Add(time.Second), Bucket: 24*time.Hour + time.Second})
		if err != nil {
			return nil, err
		}
		for _, rc := range sum.Rules {
			counts[rc.RuleID] = rc.Alerts
		}
	}
	needle := strings.ToLower(d.Q)
	for _, in := range s.opts.Rules.List() {
		state := "disabled"
		switch {
		case in.LastError != "":
			state = "errors"
		case in.Enabled:
			state = "enabled"
		}
		d.Counts[state]++
		d.Total++
		if d.Kind != "" && in.Kind != d.Kind || d.State != "" && state != d.State {
			continue
		}
		if needle != "" && !strings.Contains(strings.ToLower(in.Title+" "+in.ID+" "+in.Path+" "+strings.Join(in.Tags, " ")), needle) {
			continue
		}
		row := ruleRow{Info: in, Alerts: counts[in.ID]}
		if in.Evaluations > 0 {
			row.AvgNS = in.Cost.Nanoseconds() / int64(in.Evaluations)
		}
		d.Rules = append(d.Rules, row)
	}
	return d, nil
}

// ruleEnable and ruleDisable are the rules page's forms (POST, CSRF-checked
// and audited by servePage); they go back to the page they came from.
func (s *Server) ruleEnable(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.ruleSwitch(r, true)
}

func (s *Server) ruleDisable(w http.ResponseWriter, r *http.Request) (any, error) {
	return s.ruleSwitch(r, false)
}

func (s *Server) ruleSwitch(r *http.Request, enabled bool) (any, error) {
	if s.opts.Rules == nil {
		return nil, notConfigured("rules")
	}
	id, e := pathID(r, "id")
	if e != nil {
		return nil, e
	}
	if !s.ruleKnown(id) {
		return nil, errorf(CodeNotFound, "no such rule")
	}
	if err := s.opts.Rules.SetEnabled(r.Context(), id, enabled); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errorf(CodeNotFound, "no such rule")
		}
		return nil, err
	}
	back := r.PostFormValue("back")
	if !strings.HasPrefix(back, "/rules") {
		back = "/rules"
	}
	return redirect(back), nil
}
