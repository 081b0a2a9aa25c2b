// Package usernames maps numeric user ids to user names from /etc/passwd
// for the agent's sensors. The file is read again only on a miss, when it
// changed, and at most every Recheck, so a burst of events from an unknown
// uid costs one stat, not one read per event.
//
// It imports only the standard library. A Cache is not safe for concurrent
// use: each sensor keeps its own in the goroutine that enriches events.
package usernames

import (
	"bufio"
	"os"
	"strings"
	"time"
)

// Recheck is the shortest time between two looks at the file after a miss.
const Recheck = 30 * time.Second

// Cache answers Name from the last read of a passwd file.
type Cache struct {
	path     string
	names    map[string]string
	mtime    time.Time
	loadedAt time.Time
}

// New returns a Cache over the passwd file at path (normally /etc/passwd);
// nothing is read until the first Name.
func New(path string) *Cache { return &Cache{path: path} }

// Name returns the user name for uid (decimal, as the kernel reports it), or
// "" when the file has none.
func (c *Cache) Name(uid string) string {
	if n, ok := c.names[uid]; ok {
		return n
	}
	now := time.Now()
	if c.names != nil && now.Sub(c.loadedAt) < Recheck {
		return ""
	}
	c.loadedAt = now
	fi, err := os.Stat(c.path)
	if err != nil || (c.names != nil && fi.ModTime().Equal(c.mtime)) {
		if c.names == nil {
			c.names = map[string]string{}
		}
		return ""
	}
	c.mtime = fi.ModTime()
	c.names = parse(c.path)
	return c.names[uid]
}

// parse reads name:pw:uid:… lines; the first name for a uid wins, as in
// getpwuid. An unreadable file gives an empty map.
func parse(path string) map[string]string {
	m := map[string]string{}
	f, err := os.Open(path)
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		parts := strings.SplitN(line, ":", 4)
		if len(parts) < 4 || parts[0] == "" {
			continue
		}
		if _, dup := m[parts[2]]; !dup {
			m[parts[2]] = parts[0]
		}
	}
	return m
}
