package web

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/authz"
)

//go:embed console
var consoleFS embed.FS

// page is one entry of the console's page table: a server-rendered HTML
// page or a form target. Like the API's route table, every entry names the
// permission it needs, and registration panics on one that has none.
type page struct {
	method  string // "" is GET
	pattern string // ServeMux pattern without the method
	perm    authz.Permission
	title   string // the <title> and the nav label
	// nav puts the page in the navigation bar (in table order), shown to
	// roles holding perm.
	nav bool
	// tmpl is the page's template file under console/templates; it defines
	// "content", which the shared layout (layout.html) wraps.
	tmpl    string
	scripts []string // extra scripts under /static/, after console.js
	// pending lets a session that must still enrol TOTP in (and nothing
	// else may).
	pending bool
	// handle returns the data the template gets as .Data, a redirect, or an
	// error: an *Error is shown with its status, anything else is a logged
	// 500.
	handle func(w http.ResponseWriter, r *http.Request) (any, error)
	// raw, instead of handle and tmpl, writes the whole response itself.
	raw func(w http.ResponseWriter, r *http.Request) error
}

// redirect is a handler result: answer 303 See Other to this local path.
type redirect string

// written is a handler result: the handler wrote the response itself.
type written struct{}

// view is what every template is executed with.
type view struct {
	Title   string
	User    string
	Role    authz.Role
	CSRF    string
	Nav     []navItem
	Scripts []string
	Bare    bool // no navigation (login pages)
	Path    string
	Data    any
}

type navItem struct {
	Path, Title string
	Current     bool
}

// templateFuncs are available in every console template.
var templateFuncs = template.FuncMap{
	// when formats a time as UTC, to the second.
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	// ago is a short relative age: 5s, 3m, 2h, 4d.
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return shortDuration(time.Since(t))
	},
	// query builds "?k=v&…" from pairs, dropping empty values.
	"query": queryString,
	// pathEscape makes one path segment of untrusted text.
	"pathEscape": url.PathEscape,
}

func shortDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d"
}

// parseTemplates builds one template set per page template: the layout
// plus the page's file.
func parseTemplates() map[string]*template.Template {
	out := map[string]*template.Template{}
	names, err := fs.Glob(consoleFS, "console/templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" {
			continue
		}
		t := template.Must(template.New(base).Funcs(templateFuncs).ParseFS(consoleFS, "console/templates/layout.html", n))
		out[base] = t
	}
	return out
}

// registerPage adds one page to the mux. It panics on an entry that could
// not be served safely.
func (s *Server) registerPage(pg page) {
	if pg.method == "" {
		pg.method = http.MethodGet
	}
	switch {
	case pg.perm == "":
		panic("web: page " + pg.pattern + " has no permission")
	case pg.perm != authz.PermPublic && !anyRoleAllows(pg.perm):
		panic("web: page " + pg.pattern + " needs " + string(pg.perm) + ", which no role holds")
	case (pg.handle == nil) == (pg.raw == nil):
		panic("web: page " + pg.pattern + " needs exactly one of handle and raw")
	case pg.handle != nil && s.tmpl[pg.tmpl] == nil:
		panic("web: page " + pg.pattern + ": no template " + pg.tmpl)
	}
	label := pg.method + " " + pg.pattern
	s.mux.Handle(label, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		s.servePage(sw, r, pg)
		s.requests.WithLabelValues(label, strconv.Itoa(sw.status)).Inc()
		s.duration.WithLabelValues(label).Observe(time.Since(start).Seconds())
	}))
}

// servePage authenticates a console request by its session cookie, checks
// the page's permission and, for a state change, the CSRF token and origin;
// then runs the handler and renders its result in the layout.
func (s *Server) servePage(w *statusWriter, r *http.Request, pg page) {
	if pg.perm != authz.PermPublic {
		if !s.consoleReady() {
			s.pageError(w, r, errorf(CodeUnavailable, "the console is not configured on this server"))
			return
		}
		sess, u, err := s.session(r, pg.pending)
		switch {
		case errors.Is(err, errNoSession):
			if pg.method == http.MethodGet {
				s.redirectLogin(w, r)
				return
			}
			s.pageError(w, r, errorf(CodeUnauthorized, "you are not signed in (or the session expired); sign in again"))
			return
		case err != nil:
			s.log.Error("session lookup failed", "err", err)
			s.pageError(w, r, errorf(CodeUnavailable, "cannot check the session now; retry later"))
			return
		}
		p := principal{kind: "user", name: u.Name, role: u.Role, sess: sess}
		r = r.WithContext(withPrincipal(r.Context(), p))
		if !u.Role.Allows(pg.perm) {
			if stateChanging(r.Method) {
				s.auditRequest(r, pg.method+" "+pg.pattern, http.StatusForbidden, "forbidden")
			}
			s.pageError(w, r, errorf(CodeForbidden, "your role (%s) may not open this page", u.Role))
			return
		}
		if stateChanging(r.Method) {
			r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
			if e := checkCSRF(r, sess, true); e != nil {
				s.auditRequest(r, pg.method+" "+pg.pattern, e.Status(), e.Message)
				s.pageError(w, r, e)
				return
			}
		}
		if pg.pending && !sess.Pending {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		if stateChanging(r.Method) {
			r = withAuditNote(r)
			defer func() { s.auditRequest(r, pg.method+" "+pg.pattern, w.status, "") }()
		}
	}
	if pg.raw != nil {
		if err := pg.raw(w, r); err != nil {
			s.pageFailed(w, r, pg, err)
		}
		return
	}
	data, err := pg.handle(w, r)
	if err != nil {
		s.pageFailed(w, r, pg, err)
		return
	}
	if _, ok := data.(written); ok {
		return
	}
	if to, ok := data.(redirect); ok {
		http.Redirect(w, r, localPath(string(to)), http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, pg.tmpl, pg.title, pg.scripts, data)
}

func (s *Server) pageFailed(w http.ResponseWriter, r *http.Request, pg page, err error) {
	e, unexpected := toAPI(err)
	if unexpected {
		s.log.Error("console request failed", "page", pg.method+" "+pg.pattern, "err", err)
	}
	s.pageError(w, r, e)
}

// localPath keeps a redirect target on this server: a path starting with a
// single "/", else "/".
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || strings.ContainsAny(p, "\r\n") {
		return "/"
	}
	return p
}

func (s *Server) redirectLogin(w http.ResponseWriter, r *http.Request) {
	to := "/login"
	if r.URL.Path != "/" {
		to += "?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// render executes a page template inside the layout. The page is rendered
// to a buffer first, so a template error is a clean 500.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, tmpl, title string, scripts []string, data any) {
	p := who(r)
	v := view{Title: title, User: p.name, Role: p.role, Scripts: scripts, Path: r.URL.Path, Data: data}
	if p.sess != nil {
		v.CSRF = p.sess.CSRF
		v.Bare = p.sess.Pending
	} else {
		v.Bare = true
	}
	if !v.Bare {
		for _, pg := range s.pages {
			if pg.nav && p.role.Allows(pg.perm) {
				navPath := strings.TrimSuffix(pg.pattern, "{$}")
				cur := navPath == r.URL.Path || navPath != "/" && strings.HasPrefix(r.URL.Path, navPath+"/")
				v.Nav = append(v.Nav, navItem{Path: navPath, Title: pg.title, Current: cur})
			}
		}
	}
	var buf bytes.Buffer
	if err := s.tmpl[tmpl].ExecuteTemplate(&buf, "layout", v); err != nil {
		s.log.Error("rendering a console page", "template", tmpl, "err", err)
		status, buf = http.StatusInternalServerError, *bytes.NewBufferString("<!doctype html><title>Error</title><p>internal error</p>")
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

type errorData struct {
	Status  int
	Message string
}

// pageError shows e as an HTML page with its status.
func (s *Server) pageError(w http.ResponseWriter, r *http.Request, e *Error) {
	s.render(w, r, e.Status(), "error.html", http.StatusText(e.Status()), nil, errorData{e.Status(), e.Message})
}

// serveStatic serves the embedded scripts and styles.
func (s *Server) serveStatic(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("file")
	b, err := fs.ReadFile(consoleFS, "console/static/"+name)
	if err != nil || strings.Contains(name, "/") {
		return errorf(CodeNotFound, "no such file")
	}
	ct := mime.TypeByExtension(path.Ext(name))
	switch path.Ext(name) {
	case ".js":
		ct = "text/javascript; charset=utf-8"
	case ".css":
		ct = "text/css; charset=utf-8"
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
	return nil
}

// queryString builds "?k=v&…" from pairs, escaping, leaving out empty
// values ("" when all are).
func queryString(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			v.Add(kv[i], kv[i+1])
		}
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}
