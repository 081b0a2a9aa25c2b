package rulepack

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// entry is one file or directory of a source, named by a slash path
// relative to the source's root.
type entry struct {
	name string
	mode fs.FileMode
	size uint64 // as declared; the copy enforces the real size
	open func() (io.ReadCloser, error)
}

// source is an opened zip or directory.
type source struct {
	entries []entry
	sha256  string   // of the archive; "" for a directory
	topDir  string   // the stripped top directory of an archive, if any
	urls    []string // every URL a download went through, first to last
	closers []func() error
}

func (s *source) close() {
	for _, c := range s.closers {
		c()
	}
}

// openSource downloads, opens or walks opts.Source. Downloads are spooled to
// a temporary file in tmpDir.
func openSource(ctx context.Context, opts *Options, tmpDir string) (*source, error) {
	src := opts.Source
	if isURL(src) {
		return download(ctx, opts, tmpDir)
	}
	fi, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return walkDir(src, opts)
	}
	if fi.Size() > opts.MaxDownload {
		return nil, fmt.Errorf("%w: %s is %d bytes, over the %d byte limit", ErrTooLarge, src, fi.Size(), opts.MaxDownload)
	}
	f, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	s := &source{closers: []func() error{f.Close}}
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, opts.MaxDownload)); err != nil {
		s.close()
		return nil, err
	}
	s.sha256 = hex.EncodeToString(h.Sum(nil))
	if err := s.openZip(f, fi.Size(), opts); err != nil {
		s.close()
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	return s, nil
}

func isURL(src string) bool {
	return strings.HasPrefix(src, "https://") || strings.HasPrefix(src, "http://")
}

// NewHTTPClient returns the client used for URL sources: it speaks only
// https (also after redirects, at most 10), and times out a connection
// attempt after 30 s, a response's headers after 60 s and a whole download
// after 10 minutes. rt, when not nil, carries the requests (tests pass an
// httptest TLS server's transport).
func NewHTTPClient(rt http.RoundTripper) *http.Client {
	if rt == nil {
		rt = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   15 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			IdleConnTimeout:       30 * time.Second,
			ForceAttemptHTTP2:     true,
		}
	}
	return &http.Client{
		Transport: httpsOnly{rt},
		Timeout:   10 * time.Minute,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("more than 10 redirects")
			}
			if req.URL.Scheme != "https" {
				return fmt.Errorf("%w: redirect to %s, which is not https", ErrUnsafe, req.URL.Redacted())
			}
			return nil
		},
	}
}

// httpsOnly refuses any request that is not https before it is sent.
type httpsOnly struct{ next http.RoundTripper }

func (t httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		return nil, fmt.Errorf("%w: %s is not https", ErrUnsafe, req.URL.Redacted())
	}
	return t.next.RoundTrip(req)
}

// download fetches opts.Source into a temporary file, hashing it on the way,
// and opens it as a zip.
func download(ctx context.Context, opts *Options, tmpDir string) (*source, error) {
	s := &source{urls: []string{opts.Source}}
	// A shallow copy of the caller's client that also records the redirect
	// chain (the release tag is in the middle of it on GitHub).
	c := *opts.Client
	check := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		s.urls = append(s.urls, req.URL.String())
		if check != nil {
			return check(req, via)
		}
		if len(via) >= 10 {
			return errors.New("more than 10 redirects")
		}
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, opts.Source, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("downloading rule pack: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("downloading %s: %s", resp.Request.URL.Redacted(), resp.Status)
	}
	if resp.ContentLength > opts.MaxDownload {
		return nil, fmt.Errorf("%w: the archive is %d bytes, over the %d byte limit", ErrTooLarge, resp.ContentLength, opts.MaxDownload)
	}
	if err := os.MkdirAll(tmpDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(tmpDir, ".download-*.zip")
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, f.Close, func() error { return os.Remove(f.Name()) })
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(resp.Body, opts.MaxDownload+1))
	if err != nil {
		s.close()
		return nil, fmt.Errorf("downloading rule pack: %w", err)
	}
	if n > opts.MaxDownload {
		s.close()
		return nil, fmt.Errorf("%w: the archive is over the %d byte limit", ErrTooLarge, opts.MaxDownload)
	}
	s.sha256 = hex.EncodeToString(h.Sum(nil))
	if err := s.openZip(f, n, opts); err != nil {
		s.close()
		return nil, fmt.Errorf("%s: %w", opts.Source, err)
	}
	return s, nil
}

// openZip lists the archive's entries, checks each one and strips a common
// top directory.
func (s *source) openZip(r io.ReaderAt, size int64, opts *Options) error {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return err
	}
	if len(zr.File) > 4*opts.MaxFiles {
		return fmt.Errorf("%w: %d entries in the archive", ErrTooLarge, len(zr.File))
	}
	for _, f := range zr.File {
		name := f.Name
		mode := f.Mode()
		if strings.HasSuffix(name, "/") && mode.IsDir() {
			name = strings.TrimSuffix(name, "/")
		}
		if err := checkEntry(name, mode); err != nil {
			return err
		}
		s.entries = append(s.entries, entry{name: name, mode: mode, size: f.UncompressedSize64, open: f.Open})
	}
	s.topDir = stripTop(s.entries)
	if s.topDir != "" {
		var kept []entry
		for _, e := range s.entries {
			if e.name == s.topDir {
				continue
			}
			e.name = strings.TrimPrefix(e.name, s.topDir+"/")
			kept = append(kept, e)
		}
		s.entries = kept
		s.topDir = cleanVersion(s.topDir)
	}
	return nil
}

// stripTop returns the one top directory every entry lives in, if there is
// such a directory and its name does not start with "rules".
func stripTop(es []entry) string {
	top := ""
	files := 0
	for _, e := range es {
		first, rest, nested := strings.Cut(e.name, "/")
		if !nested && !e.mode.IsDir() {
			return "" // a file at the top
		}
		if top == "" {
			top = first
		} else if first != top {
			return ""
		}
		if nested && rest != "" && !e.mode.IsDir() {
			files++
		}
	}
	if files == 0 || strings.HasPrefix(strings.ToLower(top), "rules") {
		return ""
	}
	return top
}

// walkDir lists a directory source. The root may be a symbolic link; links
// inside it are refused like those in an archive.
func walkDir(root string, opts *Options) (*source, error) {
	root, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, err
	}
	s := &source{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir // .git and friends: never rules, possibly huge
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if err := checkEntry(name, info.Mode()); err != nil {
			return err
		}
		if len(s.entries) >= 4*opts.MaxFiles {
			return fmt.Errorf("%w: more than %d entries under %s", ErrTooLarge, 4*opts.MaxFiles, root)
		}
		s.entries = append(s.entries, entry{
			name: name, mode: info.Mode(), size: uint64(info.Size()),
			open: func() (io.ReadCloser, error) { return os.Open(p) },
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// checkEntry refuses names that could land outside the pack directory and
// anything that is neither a regular file nor a directory.
func checkEntry(name string, mode fs.FileMode) error {
	bad := func(why string) error { return fmt.Errorf("%w: entry %q: %s", ErrUnsafe, name, why) }
	switch {
	case mode&fs.ModeSymlink != 0:
		return bad("symbolic link")
	case !mode.IsRegular() && !mode.IsDir():
		return bad("not a regular file (" + mode.Type().String() + ")")
	case name == "":
		return bad("empty name")
	case strings.ContainsRune(name, '\\'):
		return bad("backslash in the name")
	case strings.HasPrefix(name, "/"), len(name) >= 2 && name[1] == ':':
		return bad("absolute path")
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return bad("control character in the name")
	}
	for _, el := range strings.Split(name, "/") {
		switch el {
		case "..":
			return bad("parent directory (..) in the path")
		case ".", "":
			return bad("empty or . element in the path")
		}
	}
	if !filepath.IsLocal(filepath.FromSlash(name)) {
		return bad("not a local path")
	}
	return nil
}
