package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/vigil-edr/vigil/internal/overview"
)

var _ overview.Store = (*DB)(nil)

// AlertSummary counts the alerts first seen in the window: by bucket and
// level, by rule (with the title and tags of the rule's newest alert) and by
// host. Each count is one GROUP BY over the covering index
// alerts_first_seen, so the alert rows themselves are read only for the
// newest alert of each rule.
func (d *DB) AlertSummary(ctx context.Context, w overview.Window) (*overview.Summary, error) {
	if err := w.Check(); err != nil {
		return nil, err
	}
	since, until, width := w.Since.UnixNano(), w.Until.UnixNano(), int64(w.Bucket)
	s := &overview.Summary{Window: w, Buckets: make([]overview.Bucket, w.NumBuckets())}
	for i := range s.Buckets {
		s.Buckets[i].Start = w.Since.Add(w.Bucket * time.Duration(i)).UTC()
	}
	fail := func(what string, err error) (*overview.Summary, error) {
		return nil, fmt.Errorf("sqlite: alert summary: %s: %w", what, err)
	}

	// One range count per bucket, levels summed in the same pass: a plain
	// scan of the covering index, where GROUP BY on a computed bucket
	// would sort every alert of the window in a temporary b-tree (measured
	// 75-90 ms for 100,000 alerts, against about 20 ms this way).
	conn, err := d.r.Conn(ctx)
	if err != nil {
		return fail("levels", err)
	}
	defer conn.Close()
	st, err := conn.PrepareContext(ctx, `SELECT coalesce(sum(level_rank <= 0), 0), coalesce(sum(level_rank = 1), 0),
		coalesce(sum(level_rank = 2), 0), coalesce(sum(level_rank = 3), 0), coalesce(sum(level_rank >= 4), 0)
		FROM alerts WHERE first_seen >= ? AND first_seen < ?`)
	if err != nil {
		return fail("levels", err)
	}
	defer st.Close()
	for i := range s.Buckets {
		lo := since + int64(i)*width
		hi := min(lo+width, until)
		c := &s.Buckets[i].Counts
		if err := st.QueryRowContext(ctx, lo, hi).Scan(&c[0], &c[1], &c[2], &c[3], &c[4]); err != nil {
			return fail("levels", err)
		}
		for lv, n := range c {
			s.Total[lv] += n
		}
	}

	rows, err := conn.QueryContext(ctx, `SELECT a.rule_id, a.rule_title, a.tags, g.n FROM
		(SELECT rule_id, count(*) AS n, max(id) AS newest FROM alerts
			WHERE first_seen >= ? AND first_seen < ? GROUP BY rule_id) g
		JOIN alerts a ON a.id = g.newest
		ORDER BY g.n DESC, a.rule_id`, since, until)
	if err != nil {
		return fail("rules", err)
	}
	for rows.Next() {
		var rc overview.RuleCount
		var tags string
		if err := rows.Scan(&rc.RuleID, &rc.Title, &tags, &rc.Alerts); err != nil {
			rows.Close()
			return fail("rules", err)
		}
		if err := json.Unmarshal([]byte(tags), &rc.Tags); err != nil {
			rows.Close()
			return fail("rule "+rc.RuleID+" tags", err)
		}
		s.Rules = append(s.Rules, rc)
	}
	if err := closeRows(rows); err != nil {
		return fail("rules", err)
	}

	rows, err = conn.QueryContext(ctx, `SELECT host, count(*) AS n FROM alerts
		WHERE first_seen >= ? AND first_seen < ? GROUP BY host ORDER BY n DESC, host LIMIT ?`, since, until, w.Top)
	if err != nil {
		return fail("hosts", err)
	}
	for rows.Next() {
		var hc overview.HostCount
		if err := rows.Scan(&hc.Host, &hc.Alerts); err != nil {
			rows.Close()
			return fail("hosts", err)
		}
		s.TopHosts = append(s.TopHosts, hc)
	}
	if err := closeRows(rows); err != nil {
		return fail("hosts", err)
	}
	return s, nil
}

// closeRows closes rows and returns the iteration's error, if any.
func closeRows(rows *sql.Rows) error {
	err := rows.Err()
	rows.Close()
	return err
}
