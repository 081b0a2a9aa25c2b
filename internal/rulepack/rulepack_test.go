package rulepack_test

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/rulepack"
	"github.com/vigil-edr/vigil/internal/testkit"
)

const drl = "# Detection Rule License (DRL) 1.1\n\nPermission is hereby granted, free of charge, ...\n"

// rule returns a small valid Sigma rule.
func rule(n int) string {
	return fmt.Sprintf(`title: Test rule %d
id: 00000000-0000-4000-8000-%012d
status: test
logsource:
  product: linux
  category: process_creation
detection:
  selection:
    Image|endswith: /evil%d
  condition: selection
level: high
`, n, n, n)
}

// zf is one zip entry; mode 0 means a regular file.
type zf struct {
	name, body string
	mode       fs.FileMode
}

func makeZip(t *testing.T, files ...zf) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		h := &zip.FileHeader{Name: f.name, Method: zip.Deflate}
		if f.mode != 0 {
			h.SetMode(f.mode)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// serve serves files by path on 127.0.0.1 and counts the requests.
func serve(t *testing.T, files map[string][]byte, redirects map[string]string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if to, ok := redirects[r.URL.Path]; ok {
			http.Redirect(w, r, to, http.StatusFound)
			return
		}
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/zip")
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// ymlFiles counts the .yml files under dir's rules* directories.
func ymlFiles(t *testing.T, dir string) int {
	t.Helper()
	roots, _ := filepath.Glob(filepath.Join(dir, "rules*"))
	n := 0
	for _, r := range roots {
		filepath.WalkDir(r, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			if !d.IsDir() && strings.HasSuffix(p, ".yml") {
				n++
			}
			return nil
		})
	}
	return n
}

// assertClean checks that no temporary directory or download is left in
// the packs directory.
func assertClean(t *testing.T, data string) {
	t.Helper()
	ents, err := os.ReadDir(rulepack.Dir(data))
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

func TestInstallCorpusDirectory(t *testing.T) {
	corpus := testkit.Corpus(t, "sigma")
	data := t.TempDir()
	m, err := rulepack.Install(context.Background(), data, rulepack.Options{Source: corpus, Name: "sigmahq"})
	if err != nil {
		t.Fatal(err)
	}
	want := ymlFiles(t, corpus)
	if want == 0 {
		t.Fatalf("no .yml files under %s/rules*", corpus)
	}
	if m.Rules != want {
		t.Errorf("rules = %d, want %d (.yml files under rules*)", m.Rules, want)
	}
	if got := ymlFiles(t, filepath.Join(rulepack.Dir(data), "sigmahq")); got != want {
		t.Errorf("installed %d .yml files under rules*, want %d", got, want)
	}
	t.Logf("%d rule files, %d rules loaded, %d rejected", m.Rules, m.Loaded, m.Rejected)
	if m.Source != corpus {
		abs, _ := filepath.Abs(corpus)
		if m.Source != abs {
			t.Errorf("source = %q, want %q", m.Source, abs)
		}
	}
	if m.Loaded == 0 {
		t.Error("no rule loaded")
	}
	if m.License != "DRL-1.1" {
		t.Errorf("license = %q, want DRL-1.1", m.License)
	}
	dir := filepath.Join(rulepack.Dir(data), "sigmahq")
	for _, f := range []string{"LICENSE", "LICENSE.Detection.Rules.md"} {
		want, _ := os.ReadFile(filepath.Join(corpus, f))
		got, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s not copied as is (%v)", f, err)
		}
	}
	if m.LicenseFiles[0] != "LICENSE.Detection.Rules.md" {
		t.Errorf("license files = %q, want the DRL text first", m.LicenseFiles)
	}
	for _, absent := range []string{"regression_data", "tests"} {
		if _, err := os.Stat(filepath.Join(dir, absent)); err == nil {
			t.Errorf("%s was installed; only rules* directories should be", absent)
		}
	}
	if m.VersionFrom != "install date" || m.Version != time.Now().UTC().Format(time.DateOnly) {
		t.Errorf("version = %q from %q, want today's date", m.Version, m.VersionFrom)
	}
	if len(m.SHA256) != 64 {
		t.Errorf("sha256 = %q", m.SHA256)
	}
	assertClean(t, data)
}

func TestInstallZipOverHTTP(t *testing.T) {
	archive := makeZip(t,
		zf{name: "sigma-r2024-01-01/", mode: fs.ModeDir | 0o755},
		zf{name: "sigma-r2024-01-01/rules/linux/a.yml", body: rule(1)},
		zf{name: "sigma-r2024-01-01/rules-threat-hunting/b.yaml", body: rule(2)},
		zf{name: "sigma-r2024-01-01/rules/linux/notes.txt", body: "not a rule"},
		zf{name: "sigma-r2024-01-01/regression_data/info.yml", body: "not: a rule"},
		zf{name: "sigma-r2024-01-01/deprecated/old.yml", body: rule(3)},
		zf{name: "sigma-r2024-01-01/.github/workflows/ci.yml", body: "on: push"},
		zf{name: "sigma-r2024-01-01/LICENSE.Detection.Rules.md", body: drl},
		zf{name: "sigma-r2024-01-01/README.md", body: "# rules"},
		zf{name: "sigma-r2024-01-01/Makefile", body: "all:"},
	)
	srv, _ := serve(t, map[string][]byte{"/pack.zip": archive}, nil)
	data := t.TempDir()
	m, err := rulepack.Install(context.Background(), data, rulepack.Options{Source: srv.URL + "/pack.zip", Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "pack" {
		t.Errorf("name = %q, want pack (from the URL)", m.Name)
	}
	if m.Version != "sigma-r2024-01-01" || m.VersionFrom != "top directory" {
		t.Errorf("version = %q from %q, want the top directory", m.Version, m.VersionFrom)
	}
	if m.SHA256 != sha(archive) {
		t.Errorf("sha256 = %s, want %s", m.SHA256, sha(archive))
	}
	if m.Rules != 2 || m.Loaded != 2 || m.Rejected != 0 {
		t.Errorf("rules/loaded/rejected = %d/%d/%d, want 2/2/0", m.Rules, m.Loaded, m.Rejected)
	}
	if m.License != "DRL-1.1" || !slices.Equal(m.LicenseFiles, []string{"LICENSE.Detection.Rules.md"}) {
		t.Errorf("license = %q %q", m.License, m.LicenseFiles)
	}
	if !m.Enabled || m.Source != srv.URL+"/pack.zip" || m.InstalledAt.IsZero() {
		t.Errorf("manifest = %+v", m)
	}
	var files []string
	dir := filepath.Join(rulepack.Dir(data), "pack")
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(files)
	want := []string{"LICENSE.Detection.Rules.md", "README.md", "pack.json", "rules-threat-hunting/b.yaml", "rules/linux/a.yml"}
	if !slices.Equal(files, want) {
		t.Errorf("installed %q, want %q", files, want)
	}
	list, err := rulepack.List(data)
	if err != nil || len(list) != 1 || list[0].SHA256 != m.SHA256 || list[0].Version != m.Version {
		t.Errorf("List = %+v, %v", list, err)
	}
	assertClean(t, data)
}

// The default source is GitHub's "latest" URL, which redirects to the
// tagged asset: the tag names the version, and the licence is the DRL
// although the release archive holds no licence file.
func TestReleaseTagThroughRedirect(t *testing.T) {
	archive := makeZip(t,
		zf{name: "rules/windows/a.yml", body: rule(1)},
		zf{name: "rules-emerging-threats/b.yml", body: rule(2)},
	)
	latest := "/SigmaHQ/sigma/releases/latest/download/sigma_all_rules.zip"
	tagged := "/SigmaHQ/sigma/releases/download/r2099-01-02/sigma_all_rules.zip"
	srv, _ := serve(t, map[string][]byte{"/blob/123": archive}, map[string]string{latest: tagged, tagged: "/blob/123"})
	// The test server stands in for github.com.
	client := srv.Client()
	client.Transport = hostRewrite{srv.URL, client.Transport}
	data := t.TempDir()
	m, err := rulepack.Install(context.Background(), data, rulepack.Options{Source: strings.Replace(rulepack.DefaultSource, "https://", "http://", 1), Client: client})
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != rulepack.DefaultName || m.Version != "r2099-01-02" || m.VersionFrom != "release tag" || m.License != "DRL-1.1" || m.Rules != 2 {
		t.Errorf("manifest = %+v", m)
	}
}

// hostRewrite sends every request to the test server.
type hostRewrite struct {
	base string
	next http.RoundTripper
}

func (h hostRewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.URL.Scheme, r.URL.Host = "http", strings.TrimPrefix(h.base, "http://")
	return h.next.RoundTrip(r)
}

func TestVersionFileAndLocalZip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "My Rules.zip")
	archive := makeZip(t,
		zf{name: "top/VERSION", body: "2.5.1\nbuilt by ci\n"},
		zf{name: "top/detections/a.yml", body: rule(1)},
		zf{name: "top/LICENSE", body: "MIT License\n\nCopyright ..."},
	)
	if err := os.WriteFile(p, archive, 0o644); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	m, err := rulepack.Install(context.Background(), data, rulepack.Options{Source: p})
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "my-rules" || m.Version != "2.5.1" || m.VersionFrom != "VERSION file" || m.License != "MIT" || m.Rules != 1 || m.SHA256 != sha(archive) {
		t.Errorf("manifest = %+v", m)
	}
}

func TestReinstallReplaces(t *testing.T) {
	data := t.TempDir()
	install := func(files ...zf) *rulepack.Manifest {
		t.Helper()
		p := filepath.Join(t.TempDir(), "pack.zip")
		os.WriteFile(p, makeZip(t, files...), 0o644)
		m, err := rulepack.Install(context.Background(), data, rulepack.Options{Source: p, Name: "corp"})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	install(zf{name: "rules/a.yml", body: rule(1)}, zf{name: "rules/b.yml", body: rule(2)}, zf{name: "VERSION", body: "1"})
	if _, err := rulepack.SetEnabled(data, "corp", false); err != nil {
		t.Fatal(err)
	}
	m := install(zf{name: "rules/c.yml", body: rule(3)}, zf{name: "VERSION", body: "2"})
	if m.Version != "2" || m.Rules != 1 {
		t.Errorf("manifest = %+v", m)
	}
	if m.Enabled {
		t.Error("reinstalling enabled a disabled pack")
	}
	dir := filepath.Join(rulepack.Dir(data), "corp")
	for f, want := range map[string]bool{"rules/a.yml": false, "rules/b.yml": false, "rules/c.yml": true} {
		if _, err := os.Stat(filepath.Join(dir, f)); (err == nil) != want {
			t.Errorf("%s present = %v, want %v", f, err == nil, want)
		}
	}
	list, _ := rulepack.List(data)
	if len(list) != 1 || list[0].Version != "2" {
		t.Errorf("List = %+v", list)
	}
	assertClean(t, data)
}

func TestEnableDisableAndEnabledPaths(t *testing.T) {
	data := t.TempDir()
	if paths, err := rulepack.EnabledPaths(data); err != nil || paths != nil {
		t.Fatalf("EnabledPaths with no packs = %q, %v", paths, err)
	}
	for _, name := range []string{"beta", "alpha"} {
		dir := filepath.Join(t.TempDir(), name)
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "r.yml"), []byte(rule(len(name))), 0o644)
		if _, err := rulepack.Install(context.Background(), data, rulepack.Options{Source: dir}); err != nil {
			t.Fatal(err)
		}
	}
	// A directory without pack.json is not a pack.
	os.MkdirAll(filepath.Join(rulepack.Dir(data), "stray"), 0o755)
	all := []string{filepath.Join(rulepack.Dir(data), "alpha"), filepath.Join(rulepack.Dir(data), "beta")}
	if paths, err := rulepack.EnabledPaths(data); err != nil || !slices.Equal(paths, all) {
		t.Fatalf("EnabledPaths = %q, %v; want %q", paths, err, all)
	}
	m, err := rulepack.SetEnabled(data, "alpha", false)
	if err != nil || m.Enabled {
		t.Fatalf("disable: %+v, %v", m, err)
	}
	if paths, _ := rulepack.EnabledPaths(data); !slices.Equal(paths, all[1:]) {
		t.Errorf("after disabling alpha: %q", paths)
	}
	list, _ := rulepack.List(data)
	if len(list) != 2 || list[0].Name != "alpha" || list[0].Enabled || !list[1].Enabled {
		t.Errorf("List = %+v", list)
	}
	if _, err := rulepack.SetEnabled(data, "alpha", true); err != nil {
		t.Fatal(err)
	}
	if paths, _ := rulepack.EnabledPaths(data); !slices.Equal(paths, all) {
		t.Errorf("after enabling alpha: %q", paths)
	}
	if _, err := rulepack.SetEnabled(data, "gamma", true); !errors.Is(err, rulepack.ErrNotFound) {
		t.Errorf("unknown pack: %v, want ErrNotFound", err)
	}
	if _, err := rulepack.SetEnabled(data, "../alpha", true); !errors.Is(err, rulepack.ErrBadName) {
		t.Errorf("bad name: %v, want ErrBadName", err)
	}
	assertClean(t, data)
}

// incompressible returns n bytes that deflate cannot shrink much.
func incompressible(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		b.WriteString(sha([]byte(fmt.Sprint(i))))
	}
	return b.String()[:n]
}

// lyingZip has one entry whose header claims a few bytes but whose data
// inflates to size bytes.
func lyingZip(t *testing.T, size int) []byte {
	t.Helper()
	var comp bytes.Buffer
	fw, _ := flate.NewWriter(&comp, flate.BestCompression)
	fw.Write(bytes.Repeat([]byte("#"), size))
	fw.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: "rules/bomb.yml", Method: zip.Deflate, CompressedSize64: uint64(comp.Len()), UncompressedSize64: 10})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(comp.Bytes())
	zw.Close()
	return buf.Bytes()
}

func TestHostileArchives(t *testing.T) {
	ok := zf{name: "rules/ok.yml", body: rule(1)}
	many := []zf{ok}
	for i := 2; i <= 5; i++ {
		many = append(many, zf{name: fmt.Sprintf("rules/r%d.yml", i), body: rule(i)})
	}
	cases := []struct {
		name    string
		archive []byte
		opts    rulepack.Options
		want    error
	}{
		{"parent dir", makeZip(t, ok, zf{name: "../evil.yml", body: rule(2)}), rulepack.Options{}, rulepack.ErrUnsafe},
		{"nested parent dir", makeZip(t, ok, zf{name: "rules/../../evil.yml", body: rule(2)}), rulepack.Options{}, rulepack.ErrUnsafe},
		{"parent dir outside rules", makeZip(t, ok, zf{name: "docs/../../../etc/cron.d/x", body: "x"}), rulepack.Options{}, rulepack.ErrUnsafe},
		{"absolute path", makeZip(t, ok, zf{name: "/tmp/evil.yml", body: rule(2)}), rulepack.Options{}, rulepack.ErrUnsafe},
		{"drive letter", makeZip(t, ok, zf{name: "C:/evil.yml", body: rule(2)}), rulepack.Options{}, rulepack.ErrUnsafe},
		{"backslashes", makeZip(t, ok, zf{name: `rules\..\..\evil.yml`, body: rule(2)}), rulepack.Options{}, rulepack.ErrUnsafe},
		{"symlink", makeZip(t, ok, zf{name: "rules/link.yml", body: "/etc/passwd", mode: fs.ModeSymlink | 0o777}), rulepack.Options{}, rulepack.ErrUnsafe},
		{"symlink dir then file through it", makeZip(t, zf{name: "rules/d", body: "/tmp", mode: fs.ModeSymlink | 0o777}, zf{name: "rules/d/x.yml", body: rule(2)}), rulepack.Options{}, rulepack.ErrUnsafe},
		{"device", makeZip(t, ok, zf{name: "rules/dev.yml", mode: fs.ModeDevice | 0o644}), rulepack.Options{}, rulepack.ErrUnsafe},
		{"case collision", makeZip(t, ok, zf{name: "rules/OK.yml", body: rule(2)}), rulepack.Options{}, rulepack.ErrUnsafe},
		{"too many files", makeZip(t, many...), rulepack.Options{MaxFiles: 4}, rulepack.ErrTooLarge},
		{"too many bytes", makeZip(t, zf{name: "rules/big.yml", body: strings.Repeat("# padding\n", 20_000)}), rulepack.Options{MaxSize: 100_000}, rulepack.ErrTooLarge},
		{"header understates size", lyingZip(t, 1<<20), rulepack.Options{MaxSize: 100_000}, zip.ErrFormat}, // archive/zip notices; the copy budget is a second line
		{"download too large", makeZip(t, zf{name: "rules/big.yml", body: incompressible(10_000)}), rulepack.Options{MaxDownload: 1000}, rulepack.ErrTooLarge},
		{"no rules", makeZip(t, zf{name: "README.md", body: "hi"}), rulepack.Options{}, rulepack.ErrNoRules},
		{"not a zip", []byte("<html>rate limited</html>"), rulepack.Options{}, zip.ErrFormat},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := t.TempDir()
			// A good version is installed; a refused update must leave it be.
			good := filepath.Join(t.TempDir(), "good")
			os.MkdirAll(filepath.Join(good, "rules"), 0o755)
			os.WriteFile(filepath.Join(good, "rules", "good.yml"), []byte(rule(9)), 0o644)
			if _, err := rulepack.Install(context.Background(), data, rulepack.Options{Source: good, Name: "p"}); err != nil {
				t.Fatal(err)
			}
			srv, _ := serve(t, map[string][]byte{"/p.zip": c.archive}, nil)
			opts := c.opts
			opts.Source, opts.Name, opts.Client = srv.URL+"/p.zip", "p", srv.Client()
			_, err := rulepack.Install(context.Background(), data, opts)
			if err == nil {
				t.Fatal("installed")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			t.Log(err)
			files, _ := filepath.Glob(filepath.Join(rulepack.Dir(data), "p", "rules", "*"))
			if len(files) != 1 || filepath.Base(files[0]) != "good.yml" {
				t.Errorf("pack now holds %q, want the old good.yml only", files)
			}
			for _, p := range []string{"evil.yml", "tmp/evil.yml", "rules/evil.yml"} {
				if _, err := os.Stat(filepath.Join(data, "rules", p)); err == nil {
					t.Errorf("%s was written", p)
				}
			}
			assertClean(t, data)
		})
	}
}

func TestDirectorySourceWithSymlink(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "rules"), 0o755)
	os.WriteFile(filepath.Join(src, "rules", "a.yml"), []byte(rule(1)), 0o644)
	if err := os.Symlink("/etc/passwd", filepath.Join(src, "rules", "b.yml")); err != nil {
		t.Skip("no symlinks here:", err)
	}
	data := t.TempDir()
	_, err := rulepack.Install(context.Background(), data, rulepack.Options{Source: src, Name: "x"})
	if !errors.Is(err, rulepack.ErrUnsafe) {
		t.Fatalf("err = %v, want ErrUnsafe", err)
	}
	if list, _ := rulepack.List(data); len(list) != 0 {
		t.Errorf("installed %+v", list)
	}
	assertClean(t, data)
}

// The default client speaks only https, also after a redirect.
func TestDefaultClientRefusesPlainHTTP(t *testing.T) {
	archive := makeZip(t, zf{name: "rules/a.yml", body: rule(1)})
	plain, plainHits := serve(t, map[string][]byte{"/p.zip": archive}, nil)

	_, err := rulepack.Install(context.Background(), t.TempDir(), rulepack.Options{Source: plain.URL + "/p.zip"})
	if !errors.Is(err, rulepack.ErrUnsafe) {
		t.Errorf("http source with the default client: %v, want ErrUnsafe", err)
	}

	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/down":
			http.Redirect(w, r, plain.URL+"/p.zip", http.StatusFound)
		case "/p.zip":
			w.Write(archive)
		}
	}))
	defer tlsSrv.Close()
	client := rulepack.NewHTTPClient(tlsSrv.Client().Transport)
	_, err = rulepack.Install(context.Background(), t.TempDir(), rulepack.Options{Source: tlsSrv.URL + "/down", Name: "x", Client: client})
	if !errors.Is(err, rulepack.ErrUnsafe) {
		t.Errorf("redirect to http: %v, want ErrUnsafe", err)
	}
	if n := plainHits.Load(); n != 0 {
		t.Errorf("the plain http server was asked %d times", n)
	}
	// The same client is fine over https.
	m, err := rulepack.Install(context.Background(), t.TempDir(), rulepack.Options{Source: tlsSrv.URL + "/p.zip", Client: client})
	if err != nil || m.Rules != 1 {
		t.Errorf("https: %+v, %v", m, err)
	}
}

func TestHTTPErrorStatus(t *testing.T) {
	srv, _ := serve(t, nil, nil)
	_, err := rulepack.Install(context.Background(), t.TempDir(), rulepack.Options{Source: srv.URL + "/missing.zip", Client: srv.Client()})
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("err = %v, want a 404", err)
	}
}

func TestBadNames(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "a.yml"), []byte(rule(1)), 0o644)
	for _, name := range []string{".hidden", "../x", "a/b", "UPPER", strings.Repeat("a", 65), "-x"} {
		if _, err := rulepack.Install(context.Background(), t.TempDir(), rulepack.Options{Source: src, Name: name}); !errors.Is(err, rulepack.ErrBadName) {
			t.Errorf("name %q: %v, want ErrBadName", name, err)
		}
	}
}
