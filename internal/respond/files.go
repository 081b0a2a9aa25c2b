package respond

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/vigil-edr/vigil/internal/transport"
)

// FileStore keeps collected files by their SHA-256 under one directory:
// DIR/XX/HASH, XX the first two hex digits. Names come only from the hash
// the store computes, never from a request; every file operation goes
// through an os.Root, so a symbolic link planted in the directory cannot
// lead outside it.
type FileStore struct {
	dir string
}

// ErrBadHash: a name that is not 64 lower-case hex digits.
var ErrBadHash = errors.New("not a SHA-256 in lower-case hex")

// OpenFileStore creates dir (0700) if needed.
func OpenFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("collected files: %w", err)
	}
	return &FileStore{dir: dir}, nil
}

// Path is the relative path of the file with hash sum, or ErrBadHash.
func Path(sum string) (string, error) {
	if len(sum) != 2*sha256.Size {
		return "", ErrBadHash
	}
	for _, c := range []byte(sum) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", ErrBadHash
		}
	}
	return sum[:2] + "/" + sum, nil
}

// Put stores at most max bytes of r and returns their SHA-256 and size;
// more than max is ErrFileTooLarge (nothing is kept).
func (s *FileStore) Put(r io.Reader, max int64) (string, int64, error) {
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return "", 0, err
	}
	defer root.Close()
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := ".upload-" + hex.EncodeToString(rnd[:])
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", 0, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, max+1))
	if err == nil && n > max {
		err = transport.ErrFileTooLarge
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		root.Remove(tmp)
		return "", 0, err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	rel, _ := Path(sum)
	if err := root.Mkdir(sum[:2], 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		root.Remove(tmp)
		return "", 0, err
	}
	if err := root.Rename(tmp, rel); err != nil {
		root.Remove(tmp)
		return "", 0, err
	}
	return sum, n, nil
}

// Open opens the file with hash sum.
func (s *FileStore) Open(sum string) (*os.File, error) {
	rel, err := Path(sum)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return root.Open(rel)
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
