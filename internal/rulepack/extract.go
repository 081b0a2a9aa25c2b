package rulepack

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// extracted is what extract found and wrote.
type extracted struct {
	ruleFiles    int
	licenseFiles []string // slash paths, licence files first by preference
	license      string
	version      string // from a VERSION file
	treeDigest   string // see pack.json's sha256
}

// extract writes the source's rule, licence, readme and VERSION files under
// dir, enforcing the size and count limits.
func extract(src *source, dir string, opts *Options) (*extracted, error) {
	var rules, others []entry
	underRulesDirs := false
	for _, e := range src.entries {
		if first, _, nested := strings.Cut(e.name, "/"); nested && strings.HasPrefix(strings.ToLower(first), "rules") {
			underRulesDirs = true
			break
		}
	}
	seen := map[string]string{}
	for _, e := range src.entries {
		if e.mode.IsDir() {
			continue
		}
		// Two names that differ only in case would overwrite each other on
		// case-insensitive file systems.
		if prev, ok := seen[strings.ToLower(e.name)]; ok {
			return nil, fmt.Errorf("%w: entries %q and %q collide", ErrUnsafe, prev, e.name)
		}
		seen[strings.ToLower(e.name)] = e.name
		switch {
		case isRule(e.name, underRulesDirs):
			rules = append(rules, e)
		case isTopLevelDoc(e.name):
			others = append(others, e)
		}
	}
	sel := append(rules, others...)
	if len(sel) > opts.MaxFiles {
		return nil, fmt.Errorf("%w: %d files to extract, over the limit of %d", ErrTooLarge, len(sel), opts.MaxFiles)
	}
	var declared uint64
	for _, e := range sel {
		declared += e.size
		if declared > uint64(opts.MaxSize) {
			return nil, fmt.Errorf("%w: the files to extract are over the %d byte limit", ErrTooLarge, opts.MaxSize)
		}
	}

	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	res := &extracted{ruleFiles: len(rules)}
	budget := opts.MaxSize
	var listing []string
	docs := map[string][]byte{}
	for _, e := range sel {
		n, sum, head, err := writeEntry(root, e, budget)
		if err != nil {
			return nil, err
		}
		budget -= n
		listing = append(listing, sum+"  "+e.name+"\n")
		if !strings.Contains(e.name, "/") {
			docs[e.name] = head
		}
	}
	sort.Strings(listing)
	res.treeDigest = digest([]byte(strings.Join(listing, "")))

	// Licence files, most specific first: a DRL text beats a repository notice.
	var names []string
	for name := range docs {
		if isLicense(name) {
			names = append(names, name)
		}
	}
	sort.Slice(names, func(i, j int) bool {
		ri, rj := licenseRank(names[i]), licenseRank(names[j])
		if ri != rj {
			return ri < rj
		}
		return names[i] < names[j]
	})
	res.licenseFiles = names
	for _, name := range names {
		if l := licenseName(docs[name]); l != "" {
			res.license = l
			break
		}
	}
	for name, head := range docs {
		if base := strings.ToLower(name); base == "version" || base == "version.txt" {
			res.version = cleanVersion(string(head))
		}
	}
	return res, nil
}

// writeEntry copies one entry into root, refusing to write more than budget
// bytes whatever its header claimed. It returns the bytes written, their hex
// SHA-256 and the first 64 KiB of a top-level file (for licence and version
// detection).
func writeEntry(root *os.Root, e entry, budget int64) (int64, string, []byte, error) {
	if d := path.Dir(e.name); d != "." {
		if err := root.MkdirAll(d, 0o755); err != nil {
			return 0, "", nil, err
		}
	}
	in, err := e.open()
	if err != nil {
		return 0, "", nil, fmt.Errorf("%s: %w", e.name, err)
	}
	defer in.Close()
	out, err := root.OpenFile(e.name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, "", nil, err
	}
	h := sha256.New()
	var head headBuf
	w := io.Writer(io.MultiWriter(out, h))
	if !strings.Contains(e.name, "/") {
		w = io.MultiWriter(w, &head)
	}
	n, err := io.Copy(w, io.LimitReader(in, budget+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, "", nil, fmt.Errorf("%s: %w", e.name, err)
	}
	if n > budget {
		return 0, "", nil, fmt.Errorf("%w: the extracted files are over the size limit (at %s)", ErrTooLarge, e.name)
	}
	return n, hex.EncodeToString(h.Sum(nil)), head.b, nil
}

// headBuf keeps the first 64 KiB written to it.
type headBuf struct{ b []byte }

func (h *headBuf) Write(p []byte) (int, error) {
	if room := 64<<10 - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// isRule reports whether name is a rule file to install: a .yml or .yaml
// file under a rules* directory when the source has such directories, else
// anywhere outside dot-directories.
func isRule(name string, underRulesDirs bool) bool {
	ext := strings.ToLower(path.Ext(name))
	if ext != ".yml" && ext != ".yaml" {
		return false
	}
	els := strings.Split(name, "/")
	if len(els) < 2 && underRulesDirs {
		return false
	}
	if underRulesDirs && !strings.HasPrefix(strings.ToLower(els[0]), "rules") {
		return false
	}
	for _, el := range els {
		if strings.HasPrefix(el, ".") {
			return false
		}
	}
	return true
}

// isTopLevelDoc reports whether name is a licence, readme or VERSION file at
// the top of the source.
func isTopLevelDoc(name string) bool {
	if strings.Contains(name, "/") {
		return false
	}
	lower := strings.ToLower(name)
	if lower == "version" || lower == "version.txt" || isLicense(name) {
		return true
	}
	switch path.Ext(lower) {
	case "", ".md", ".txt", ".rst":
		return strings.HasPrefix(lower, "readme")
	}
	return false
}

func isLicense(name string) bool {
	lower := strings.ToLower(name)
	if ext := path.Ext(lower); ext == ".yml" || ext == ".yaml" || ext == ".json" {
		return false
	}
	for _, p := range []string{"license", "licence", "copying", "notice", "drl"} {
		if strings.HasPrefix(lower, p) {
			return true
		}
	}
	return false
}

// licenseRank orders licence files: rule licences first, then the rest.
func licenseRank(name string) int {
	lower := strings.ToLower(name)
	if strings.HasPrefix(lower, "drl") || strings.Contains(lower, "detection") || strings.Contains(lower, "rule") {
		return 0
	}
	return 1
}
