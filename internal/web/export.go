package web

import (
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/eventstore"
)

// Bounds on an event export.
const (
	maxExportRows     = 100_000
	defaultExportRows = 10_000
	maxExportColumns  = 32
	exportPage        = 1000 // events per store search
)

// ExportFormat is how ExportEvents writes events.
type ExportFormat string

// Export formats.
const (
	ExportCSV  ExportFormat = "csv"
	ExportJSON ExportFormat = "json"
)

// Export describes one export: the search, the format, how many events at
// most, and (CSV only) field columns to add after the fixed ones.
type Export struct {
	Query   eventstore.Query // Limit and Before are ignored
	Format  ExportFormat
	Max     int      // 1 to maxExportRows
	Columns []string // field names; a field that repeats is joined with newlines
}

// exportEvents answers GET /api/v1/events/export. The route is audited
// (route.audit): the entry says the format, how many events were written,
// whether the stream was cut off and the query, refused exports included.
func (s *Server) exportEvents(w http.ResponseWriter, r *http.Request) error {
	res := exportResult{}
	defer func() { noteAudit(r, "", res.String()+" query="+strconv.Quote(r.URL.RawQuery)) }()
	if s.opts.Events == nil {
		return notConfigured("events")
	}
	q := newQuery(r)
	eq, e := eventQuery(q)
	if e != nil {
		return e
	}
	x := Export{Query: eq, Format: ExportFormat(cmp.Or(q.v.Get("format"), "csv")),
		Max: int(q.int("limit", 1, maxExportRows, defaultExportRows)), Columns: q.v["column"]}
	if q.err != nil {
		return q.err
	}
	if e := x.check(); e != nil {
		return e
	}
	var err error
	res, err = s.export(r.Context(), w, x)
	if res.failed {
		panic(http.ErrAbortHandler)
	}
	return err
}

// exportResult is what an export wrote, for the audit log.
type exportResult struct {
	format  ExportFormat // empty if the export did not start
	rows    int
	failed  bool // storage failed after the headers: the response is cut off
	stopped bool // the client went away before the end
}

func (e exportResult) String() string {
	if e.format == "" {
		return "events=0"
	}
	s := "format=" + string(e.format) + " events=" + strconv.Itoa(e.rows)
	switch {
	case e.failed:
		s += " cut_off=storage_error"
	case e.stopped:
		s += " cut_off=client_gone"
	}
	return s
}

func (x *Export) check() *Error {
	switch x.Format {
	case ExportCSV, ExportJSON:
	default:
		return errorf(CodeBadRequest, "format must be csv or json")
	}
	if x.Max < 1 || x.Max > maxExportRows {
		return errorf(CodeBadRequest, "limit must be from 1 to %d", maxExportRows)
	}
	if len(x.Columns) > maxExportColumns {
		return errorf(CodeBadRequest, "at most %d columns", maxExportColumns)
	}
	if len(x.Columns) > 0 && x.Format != ExportCSV {
		return errorf(CodeBadRequest, "column applies to the csv format only (json has every field)")
	}
	for _, c := range x.Columns {
		if c == "" {
			return errorf(CodeBadRequest, "column is empty")
		}
		if e := checkString("column", c, maxNameLen, false); e != nil {
			return e
		}
	}
	return nil
}

// ExportEvents streams the events matching x.Query, newest first, at most
// x.Max of them, as an attachment in x.Format: the export links of the
// console's search page and GET /api/v1/events/export both use it. It
// searches the store one page at a time, so memory stays bounded whatever
// the size. A storage error before the first byte is returned; after it,
// the response is cut off (http.ErrAbortHandler), so the client sees a
// failed download rather than a file that looks complete.
func (s *Server) ExportEvents(ctx context.Context, w http.ResponseWriter, x Export) error {
	res, err := s.export(ctx, w, x)
	if res.failed {
		panic(http.ErrAbortHandler)
	}
	return err
}

// export is ExportEvents without the panic: it reports a storage failure
// after the headers in res.failed, so the caller can record it first.
func (s *Server) export(ctx context.Context, w http.ResponseWriter, x Export) (res exportResult, err error) {
	if e := x.check(); e != nil {
		return res, e
	}
	q := x.Query
	q.Before = 0
	q.Limit = min(exportPage, x.Max)
	recs, err := s.opts.Events.Search(ctx, q)
	if err != nil {
		return res, err
	}
	res.format = x.Format
	h := w.Header()
	name := "vigil-events-" + s.now().UTC().Format("20060102T150405Z") + "." + string(x.Format)
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	if x.Format == ExportCSV {
		h.Set("Content-Type", "text/csv; charset=utf-8")
	} else {
		h.Set("Content-Type", "application/json")
	}
	setCommonHeaders(h)
	w.WriteHeader(http.StatusOK)
	out := newExportWriter(w, x)
	for {
		for _, rec := range recs[:min(len(recs), x.Max-res.rows)] {
			out.row(rec)
			res.rows++
		}
		if res.rows >= x.Max || len(recs) < q.Limit || out.err != nil {
			break
		}
		q.Before = recs[len(recs)-1].ID
		q.Limit = min(exportPage, x.Max-res.rows)
		if recs, err = s.opts.Events.Search(ctx, q); err != nil {
			s.log.Error("event export failed after the headers were sent", "rows", res.rows, "err", err)
			res.failed = true
			return res, nil
		}
	}
	if err := out.end(); err != nil {
		// The client went away, or the connection broke: nothing to tell it.
		s.log.Debug("event export stopped", "rows", res.rows, "err", err)
		res.stopped = true
	}
	return res, nil
}

// exportWriter writes rows in one format; the first error sticks.
type exportWriter struct {
	x    Export
	w    io.Writer
	csv  *csv.Writer
	rows int
	err  error
	buf  []string
}

// csvFixed are the columns every CSV export starts with.
var csvFixed = []string{"id", "time", "host", "agent_id", "product", "services", "categories", "fields"}

func newExportWriter(w io.Writer, x Export) *exportWriter {
	out := &exportWriter{x: x, w: w}
	if x.Format == ExportCSV {
		out.csv = csv.NewWriter(w)
		head := append(append([]string{}, csvFixed...), x.Columns...)
		for i := range head {
			head[i] = CSVCell(head[i])
		}
		out.err = out.csv.Write(head)
	} else {
		_, out.err = io.WriteString(w, "[")
	}
	return out
}

func (o *exportWriter) row(rec eventstore.Record) {
	if o.err != nil {
		return
	}
	o.rows++
	if o.csv == nil {
		b, err := json.Marshal(toEventJSON(rec))
		if err != nil {
			o.err = err
			return
		}
		sep := ",\n"
		if o.rows == 1 {
			sep = "\n"
		}
		_, o.err = io.WriteString(o.w, sep)
		if o.err == nil {
			_, o.err = o.w.Write(b)
		}
		return
	}
	fields, _ := json.Marshal(fieldsJSON(rec.Fields))
	t := ""
	if !rec.Time.IsZero() {
		t = rec.Time.UTC().Format(time.RFC3339Nano)
	}
	o.buf = append(o.buf[:0], strconv.FormatInt(rec.ID, 10), t, rec.Host, rec.AgentID, rec.Product,
		strings.Join(rec.Services, ","), strings.Join(rec.Category, ","), string(fields))
	for _, c := range o.x.Columns {
		var vals []string
		for _, f := range rec.Fields {
			if strings.EqualFold(f.Name, c) {
				vals = append(vals, f.Value)
			}
		}
		o.buf = append(o.buf, strings.Join(vals, "\n"))
	}
	for i := range o.buf {
		o.buf[i] = CSVCell(o.buf[i])
	}
	o.err = o.csv.Write(o.buf)
	if o.err == nil && o.rows%exportPage == 0 {
		o.csv.Flush()
		o.err = o.csv.Error()
	}
}

func (o *exportWriter) end() error {
	if o.err != nil {
		return o.err
	}
	if o.csv != nil {
		o.csv.Flush()
		return o.csv.Error()
	}
	end := "\n]\n"
	if o.rows == 0 {
		end = "]\n"
	}
	_, err := io.WriteString(o.w, end)
	return err
}

// CSVCell makes s safe as a spreadsheet cell: invalid UTF-8 becomes U+FFFD,
// and a cell a spreadsheet would read as a formula (starting with =, +, -,
// @, a tab or a carriage return) gets a leading apostrophe, which
// spreadsheets show as text (OWASP's CSV injection advice). Quoting for the
// CSV syntax itself is encoding/csv's job.
func CSVCell(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if s != "" {
		switch s[0] {
		case '=', '+', '-', '@', '\t', '\r':
			return "'" + s
		}
	}
	return s
}
