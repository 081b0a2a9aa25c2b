package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/vigil-edr/vigil/internal/overview"
)

// overviewRanges are the windows the overview offers, with their bucket
// widths (each about 48 to 96 bars).
var overviewRanges = []struct {
	name   string
	span   time.Duration
	bucket time.Duration
}{
	{"1h", time.Hour, time.Minute},
	{"24h", 24 * time.Hour, 30 * time.Minute},
	{"7d", 7 * 24 * time.Hour, 3 * time.Hour},
	{"30d", 30 * 24 * time.Hour, 12 * time.Hour},
}

type overviewData struct {
	Range    string
	Ranges   []string
	Since    time.Time
	Summary  *overview.Summary
	Total    int64
	Levels   []levelCount
	Chart    chart
	Matrix   matrixView
	TopRules []overview.RuleCount
	Fleet    *overview.Fleet
	Problems []string // parts that could not be shown
}

type levelCount struct {
	Level string
	N     int64
}

// chart is the stacked bar chart of alerts by level, laid out in SVG user
// units; the template only copies numbers and fixed class names.
type chart struct {
	W, H, Top, Bottom, Plot int
	Bars                    []chartBar
	Max                     int64
	Ticks                   []chartTick
	Labels                  []chartTick
}

type chartBar struct {
	X, W  int
	Title string
	Segs  []chartSeg
}

type chartSeg struct {
	Y, H  int
	Level string
}

type chartTick struct {
	X, Y int
	Text string
}

type matrixView struct {
	Columns []matrixColumn
	Empty   bool
}

type matrixColumn struct {
	overview.Column
	Heat  int
	Cells []matrixCell
}

type matrixCell struct {
	overview.Cell
	Heat int
}

func (s *Server) overviewPage(w http.ResponseWriter, r *http.Request) (any, error) {
	now := s.now().UTC()
	d := overviewData{Range: "24h"}
	sel := overviewRanges[1]
	for _, rg := range overviewRanges {
		d.Ranges = append(d.Ranges, rg.name)
		if rg.name == r.URL.Query().Get("range") {
			sel, d.Range = rg, rg.name
		}
	}
	// Buckets are aligned to their width so a reload does not shift them.
	until := now.Truncate(sel.bucket).Add(sel.bucket)
	d.Since = until.Add(-sel.span)
	if s.opts.Overview != nil {
		sum, err := s.opts.Overview.AlertSummary(r.Context(), overview.Window{Since: d.Since, Until: until, Bucket: sel.bucket, Top: 10})
		if err != nil {
			return nil, err
		}
		d.Summary = sum
		for i := overview.NumLevels - 1; i >= 0; i-- {
			d.Total += sum.Total[i]
			d.Levels = append(d.Levels, levelCount{overview.Levels[i], sum.Total[i]})
		}
		d.Chart = buildChart(sum)
		d.TopRules = sum.Rules[:min(len(sum.Rules), 10)]
		d.Matrix = buildMatrixView(overview.BuildMatrix(sum.Rules))
	} else {
		d.Problems = append(d.Problems, "alert figures are not available on this server")
	}
	if s.opts.Hosts != nil {
		var ev overview.Events
		if s.opts.Events != nil {
			ev = s.opts.Events
		}
		f, err := overview.FleetHealth(r.Context(), s.opts.Hosts, ev, d.Since, now)
		if err != nil {
			return nil, err
		}
		d.Fleet = f
	}
	return d, nil
}

func buildChart(sum *overview.Summary) chart {
	c := chart{W: 960, H: 220, Top: 10, Bottom: 24}
	n := len(sum.Buckets)
	if n == 0 {
		return c
	}
	for _, b := range sum.Buckets {
		c.Max = max(c.Max, b.Sum())
	}
	plot := c.H - c.Top - c.Bottom
	c.Plot = plot
	step := c.W / n
	bw := max(step-1, 1)
	for i, b := range sum.Buckets {
		bar := chartBar{X: i * step, W: bw,
			Title: b.Start.Format("2006-01-02 15:04Z") + ": " + strconv.FormatInt(b.Sum(), 10) + " alerts"}
		y := c.Top + plot // the baseline; segments stack upwards, critical on top
		for lv := 0; lv < overview.NumLevels; lv++ {
			if b.Counts[lv] == 0 || c.Max == 0 {
				continue
			}
			h := max(int(b.Counts[lv]*int64(plot)/c.Max), 1)
			y -= h
			bar.Segs = append(bar.Segs, chartSeg{Y: y, H: h, Level: overview.Levels[lv]})
		}
		c.Bars = append(c.Bars, bar)
	}
	for _, f := range []int64{0, 2, 4} { // 0, half and full scale
		v := c.Max * f / 4
		c.Ticks = append(c.Ticks, chartTick{X: 2, Y: c.Top + plot - int(int64(plot)*f/4), Text: strconv.FormatInt(v, 10)})
	}
	every := max(n/6, 1)
	for i := 0; i < n; i += every {
		c.Labels = append(c.Labels, chartTick{X: i * step, Y: c.H - 6, Text: sum.Buckets[i].Start.Format("01-02 15:04")})
	}
	return c
}

func buildMatrixView(m overview.Matrix) matrixView {
	v := matrixView{Empty: true}
	var colMax int64
	for _, c := range m.Columns {
		colMax = max(colMax, c.Alerts)
	}
	for _, c := range m.Columns {
		if c.Tactic.ID == "" && c.Alerts == 0 {
			continue // no "Other" column when every rule names its tactic
		}
		mc := matrixColumn{Column: c, Heat: overview.Heat(c.Alerts, colMax)}
		for _, cell := range c.Cells {
			mc.Cells = append(mc.Cells, matrixCell{Cell: cell, Heat: overview.Heat(cell.Alerts, m.Max)})
		}
		if c.Alerts > 0 {
			v.Empty = false
		}
		v.Columns = append(v.Columns, mc)
	}
	return v
}
