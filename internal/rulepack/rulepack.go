package rulepack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/vigil-edr/vigil/internal/detect/sigma"
)

// DefaultSource is SigmaHQ's latest release archive with every rule type.
const DefaultSource = "https://github.com/SigmaHQ/sigma/releases/latest/download/sigma_all_rules.zip"

// DefaultName is the pack name for rules from SigmaHQ.
const DefaultName = "sigmahq"

// Default limits, used where Options leaves them zero.
const (
	DefaultMaxDownload = 256 << 20 // bytes of archive
	DefaultMaxSize     = 512 << 20 // bytes extracted
	DefaultMaxFiles    = 50_000    // files extracted
)

// manifestFormat is the pack.json format this package writes and reads.
const manifestFormat = 1

// Errors callers branch on; the returned errors wrap them with details.
var (
	ErrUnsafe   = errors.New("unsafe rule pack source")
	ErrTooLarge = errors.New("rule pack too large")
	ErrNoRules  = errors.New("no rule files in the source")
	ErrNotFound = errors.New("no such rule pack")
	ErrBadName  = errors.New("invalid rule pack name")
)

// Options says what to install and within which limits.
type Options struct {
	// Source is an https URL of a zip, a local directory or a local zip;
	// empty means DefaultSource.
	Source string
	// Name is the pack name; empty means DefaultName for SigmaHQ URLs and
	// the source's base name (without .zip) otherwise.
	Name string
	// Client fetches URL sources; nil means NewHTTPClient(nil), which only
	// speaks https. Tests inject an httptest server's client.
	Client *http.Client
	// MaxDownload bounds the archive's size, MaxSize the bytes extracted and
	// MaxFiles the files extracted; zero means the Default… constant.
	MaxDownload int64
	MaxSize     int64
	MaxFiles    int
}

func (o *Options) defaults() {
	if o.Source == "" {
		o.Source = DefaultSource
	}
	if o.MaxDownload <= 0 {
		o.MaxDownload = DefaultMaxDownload
	}
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = DefaultMaxFiles
	}
	if o.Client == nil {
		o.Client = NewHTTPClient(nil)
	}
}

// Manifest describes an installed pack; it is stored as pack.json (see the
// package documentation for the meaning of each field).
type Manifest struct {
	Format       int       `json:"format"`
	Name         string    `json:"name"`
	Source       string    `json:"source"`
	Version      string    `json:"version"`
	VersionFrom  string    `json:"version_from"`
	License      string    `json:"license"`
	LicenseFiles []string  `json:"license_files,omitempty"`
	SHA256       string    `json:"sha256"`
	InstalledAt  time.Time `json:"installed_at"`
	Rules        int       `json:"rules"`
	Loaded       int       `json:"loaded"`
	Rejected     int       `json:"rejected"`
	Enabled      bool      `json:"enabled"`
}

// Dir is the directory that holds every pack of a data directory.
func Dir(dataDir string) string { return filepath.Join(dataDir, "rules", "packs") }

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidName reports whether name can name a pack.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// Install fetches or reads the source, extracts its rule and licence files
// into a new directory, validates the rules, records the manifest and swaps
// the new pack in for any older version of the same name.
func Install(ctx context.Context, dataDir string, opts Options) (*Manifest, error) {
	opts.defaults()
	if !isURL(opts.Source) {
		abs, err := filepath.Abs(opts.Source)
		if err != nil {
			return nil, err
		}
		opts.Source = abs // the manifest records where the pack came from, wherever the CLI ran
	}
	name := opts.Name
	if name == "" {
		name = deriveName(opts.Source)
	}
	if !ValidName(name) {
		return nil, fmt.Errorf("%w %q: use 1 to 64 characters from a-z, 0-9, '.', '_' and '-', starting with a letter or digit", ErrBadName, name)
	}
	packs := Dir(dataDir)
	if err := os.MkdirAll(packs, 0o755); err != nil {
		return nil, err
	}
	tidy(packs, name)
	src, err := openSource(ctx, &opts, packs)
	if err != nil {
		return nil, err
	}
	defer src.close()
	tmp, err := os.MkdirTemp(packs, ".new-"+name+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp) // after a successful swap it holds the old version, or nothing

	res, err := extract(src, tmp, &opts)
	if err != nil {
		return nil, err
	}
	if res.ruleFiles == 0 {
		return nil, fmt.Errorf("%s: %w (looked for .yml and .yaml files)", opts.Source, ErrNoRules)
	}
	m := &Manifest{
		Format:       manifestFormat,
		Name:         name,
		Source:       opts.Source,
		SHA256:       src.sha256,
		InstalledAt:  time.Now().UTC().Truncate(time.Second),
		Rules:        res.ruleFiles,
		License:      res.license,
		LicenseFiles: res.licenseFiles,
		Enabled:      true,
	}
	if m.SHA256 == "" {
		m.SHA256 = res.treeDigest
	}
	if m.License == "" && isSigmaHQ(opts.Source) {
		m.License = "DRL-1.1" // SigmaHQ's release archives ship rules only; their licence is the DRL 1.1
	}
	if m.License == "" {
		m.License = "unknown"
	}
	m.Version, m.VersionFrom = res.version, "VERSION file"
	if m.Version == "" && src.topDir != "" {
		m.Version, m.VersionFrom = src.topDir, "top directory"
	}
	if m.Version == "" {
		m.Version, m.VersionFrom = releaseTag(src.urls), "release tag"
	}
	if m.Version == "" {
		m.Version, m.VersionFrom = m.InstalledAt.Format(time.DateOnly), "install date"
	}

	rules, errs := sigma.LoadPaths(tmp)
	eng, cerrs := sigma.NewEngine(rules, sigma.Options{})
	m.Loaded = len(eng.Rules()) + len(eng.Correlations())
	m.Rejected = len(errs) + len(cerrs)

	if err := ctx.Err(); err != nil {
		return nil, err
	}
	final := filepath.Join(packs, name)
	if old, err := readManifest(final); err == nil {
		m.Enabled = old.Enabled
	}
	if err := writeManifest(tmp, m); err != nil {
		return nil, err
	}
	if err := swap(tmp, final); err != nil {
		return nil, fmt.Errorf("installing pack %s: %w", name, err)
	}
	return m, nil
}

// exchangeDirs is exchange; tests replace it to run the fallback.
var exchangeDirs = exchange

// swap puts the directory tmp at final. Afterwards tmp holds the old pack,
// if there was one, for the caller to remove.
func swap(tmp, final string) error {
	if _, err := os.Lstat(final); errors.Is(err, fs.ErrNotExist) {
		return os.Rename(tmp, final)
	}
	if err := exchangeDirs(tmp, final); err == nil {
		return nil
	}
	// No atomic exchange here: move the old pack aside, then the new one in.
	aside := tmp + ".old"
	if err := os.Rename(final, aside); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		if rerr := os.Rename(aside, final); rerr != nil {
			return errors.Join(err, fmt.Errorf("restoring the previous pack from %s: %w", aside, rerr))
		}
		return err
	}
	return os.Rename(aside, tmp)
}

// tidy tidies up after installs of this pack that crashed: it puts back
// a pack left aside by the two-rename swap and removes day-old temporary
// directories and downloads.
func tidy(packs, name string) {
	final := filepath.Join(packs, name)
	if _, err := os.Lstat(final); errors.Is(err, fs.ErrNotExist) {
		aside, _ := filepath.Glob(filepath.Join(packs, ".new-"+name+"-*.old"))
		sort.Slice(aside, func(i, j int) bool { return modTime(aside[i]).After(modTime(aside[j])) })
		for _, a := range aside {
			if os.Rename(a, final) == nil {
				break
			}
		}
	}
	stale, _ := filepath.Glob(filepath.Join(packs, ".new-"+name+"-*"))
	downloads, _ := filepath.Glob(filepath.Join(packs, ".download-*"))
	for _, p := range append(stale, downloads...) {
		if time.Since(modTime(p)) > 24*time.Hour {
			os.RemoveAll(p)
		}
	}
}

func modTime(p string) time.Time {
	fi, err := os.Lstat(p)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// List returns every installed pack's manifest, sorted by name. Directories
// without a pack.json are not packs and are skipped.
func List(dataDir string) ([]Manifest, error) {
	ents, err := os.ReadDir(Dir(dataDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Manifest
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		m, err := readManifest(filepath.Join(Dir(dataDir), e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// EnabledPaths returns the directories of the enabled packs, sorted by pack
// name, for the server to load with its other rule paths.
func EnabledPaths(dataDir string) ([]string, error) {
	ms, err := List(dataDir)
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, m := range ms {
		if m.Enabled {
			paths = append(paths, filepath.Join(Dir(dataDir), m.Name))
		}
	}
	return paths, nil
}

// SetEnabled enables or disables an installed pack and returns its manifest.
func SetEnabled(dataDir, name string, enabled bool) (*Manifest, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("%w %q", ErrBadName, name)
	}
	dir := filepath.Join(Dir(dataDir), name)
	m, err := readManifest(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, err
	}
	if m.Enabled == enabled {
		return m, nil
	}
	m.Enabled = enabled
	return m, writeManifest(dir, m)
}

func readManifest(dir string) (*Manifest, error) {
	p := filepath.Join(dir, "pack.json")
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if m.Format < 1 || m.Format > manifestFormat {
		return nil, fmt.Errorf("%s: format %d is not one this version reads (1 to %d)", p, m.Format, manifestFormat)
	}
	if m.Name != filepath.Base(dir) {
		return nil, fmt.Errorf("%s: names pack %q, not %q", p, m.Name, filepath.Base(dir))
	}
	return &m, nil
}

// writeManifest replaces dir/pack.json whole: a reader sees the old or the
// new manifest.
func writeManifest(dir string, m *Manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".pack.json-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(dir, "pack.json"))
}

// isSigmaHQ reports whether src is a URL of SigmaHQ's rule repository.
func isSigmaHQ(src string) bool {
	u, err := url.Parse(src)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, "github.com") && strings.HasPrefix(strings.ToLower(u.Path), "/sigmahq/sigma/")
}

// deriveName makes a pack name from a source: DefaultName for SigmaHQ, the
// base name otherwise. The result may still be invalid (Install says so).
func deriveName(src string) string {
	if isSigmaHQ(src) {
		return DefaultName
	}
	base := filepath.Base(filepath.Clean(src))
	if u, err := url.Parse(src); err == nil && u.Host != "" {
		base = path.Base(u.Path)
	}
	if abs, err := filepath.Abs(src); err == nil && base == "." {
		base = filepath.Base(abs)
	}
	base = strings.TrimSuffix(strings.ToLower(base), ".zip")
	var b strings.Builder
	for _, r := range base {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return strings.TrimLeft(b.String(), ".-_")
}

var tagRE = regexp.MustCompile(`/releases/download/([^/?#]+)/`)

// releaseTag finds a GitHub release tag in the URLs a download went through.
func releaseTag(urls []string) string {
	for _, u := range urls {
		if m := tagRE.FindStringSubmatch(u); m != nil {
			if t, err := url.PathUnescape(m[1]); err == nil {
				return cleanVersion(t)
			}
		}
	}
	return ""
}

// cleanVersion keeps the first line of s, trimmed, if it is short printable
// ASCII; otherwise it returns "".
func cleanVersion(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	s = strings.TrimSpace(s)
	if len(s) > 64 {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return ""
		}
	}
	return s
}

// licenseName names the licence in a licence file's text.
func licenseName(text []byte) string {
	t := bytes.ToLower(text)
	switch {
	case bytes.Contains(t, []byte("detection rule license")) && bytes.Contains(t, []byte("1.1")):
		return "DRL-1.1"
	case bytes.Contains(t, []byte("detection rule license")):
		return "DRL"
	case bytes.Contains(t, []byte("apache license")) && bytes.Contains(t, []byte("version 2.0")):
		return "Apache-2.0"
	case bytes.Contains(t, []byte("mit license")) || bytes.Contains(t, []byte("permission is hereby granted, free of charge")):
		return "MIT"
	case bytes.Contains(t, []byte("gnu general public license")) && bytes.Contains(t, []byte("version 3")):
		return "GPL-3.0"
	case bytes.Contains(t, []byte("gnu lesser general public license")):
		return "LGPL"
	case bytes.Contains(t, []byte("gnu general public license")):
		return "GPL"
	case bytes.Contains(t, []byte("creative commons")):
		return "CC"
	}
	return ""
}

// digest is the hex SHA-256 of b.
func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
