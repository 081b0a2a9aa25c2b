package fim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// entry is the recorded state of one path.
type entry struct {
	Type  string `json:"type"`            // "file", "dir", "symlink", "other"
	Hash  string `json:"sha256,omitzero"` // hex SHA-256 of the content; files up to MaxHashBytes only
	Link  string `json:"link,omitzero"`   // symlink target
	Mode  uint32 `json:"mode"`            // permission bits incl. setuid/setgid/sticky
	UID   uint32 `json:"uid"`
	GID   uint32 `json:"gid"`
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime_ns"`
	Ctime int64  `json:"ctime_ns"`
	Ino   uint64 `json:"ino"`
}

// baselineFile is the on-disk form; see "Baseline file" in the package doc.
type baselineFile struct {
	Version int               `json:"version"`
	Saved   time.Time         `json:"saved"`
	Entries map[string]*entry `json:"entries"`
}

const baselineVersion = 1

func (s *Sensor) baselinePath() string {
	if s.opts.StateDir == "" {
		return ""
	}
	return filepath.Join(s.opts.StateDir, "baseline.json")
}

// loadBaseline returns the saved entries, or nil when there is no usable
// baseline.
func (s *Sensor) loadBaseline() (map[string]*entry, error) {
	p := s.baselinePath()
	if p == "" {
		return nil, nil
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var bf baselineFile
	if err := json.Unmarshal(b, &bf); err != nil {
		return nil, fmt.Errorf("fim: baseline %s: %w", p, err)
	}
	if bf.Version != baselineVersion {
		return nil, fmt.Errorf("fim: baseline %s: version %d, want %d", p, bf.Version, baselineVersion)
	}
	for k, v := range bf.Entries {
		if v == nil {
			delete(bf.Entries, k)
		}
	}
	return bf.Entries, nil
}

// saveBaseline writes the entries atomically: a temporary file in StateDir,
// synced, then renamed over baseline.json.
func (s *Sensor) saveBaseline(entries map[string]*entry) error {
	p := s.baselinePath()
	if p == "" {
		return nil
	}
	if err := os.MkdirAll(s.opts.StateDir, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(baselineFile{Version: baselineVersion, Saved: time.Now().UTC(), Entries: entries})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.opts.StateDir, ".baseline-*.json")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("fim: save baseline: %w", err)
	}
	return nil
}
