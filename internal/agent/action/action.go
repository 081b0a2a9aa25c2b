package action

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/vigil-edr/vigil/internal/command"
)

// Uploader sends a collected file's bytes to the server for the command
// with the given id; the server answers with the SHA-256 it stored the
// bytes under.
type Uploader interface {
	UploadFile(ctx context.Context, actionID string, data []byte) (sha256 string, err error)
}

// Options configure an Executor.
type Options struct {
	// DataDir is the agent's data directory; the executor keeps its state
	// under DataDir/actions (quarantine store, network state), mode 0700.
	DataDir string
	// ServerAddrs returns the Vigil server's addresses, which isolation
	// keeps reachable (resolved from the server URL by the agent).
	ServerAddrs func(ctx context.Context) ([]netip.Addr, error)
	// IsolateAllow are networks always reachable while isolated (the
	// configuration's allow-list); commands may add more.
	IsolateAllow []netip.Prefix
	// NFT is the nft command line (default {"nft"}); tests prefix it with
	// "ip netns exec NAME".
	NFT []string
	// MaxCollectBytes bounds a collected file (default 32 MiB).
	MaxCollectBytes int64
	Uploader        Uploader
	Logger          *slog.Logger
	Now             func() time.Time
}

// Executor carries out verified commands.
type Executor struct {
	opts Options
	dir  string
	log  *slog.Logger

	netMu sync.Mutex // network state
}

// NewExecutor returns an executor; it creates DataDir/actions.
func NewExecutor(opts Options) (*Executor, error) {
	if opts.DataDir == "" {
		return nil, errors.New("action: Options.DataDir is required")
	}
	if len(opts.NFT) == 0 {
		opts.NFT = []string{"nft"}
	}
	if opts.MaxCollectBytes <= 0 {
		opts.MaxCollectBytes = 32 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Executor{opts: opts, dir: filepath.Join(opts.DataDir, "actions"), log: opts.Logger}
	if err := mkdirPrivate(e.dir); err != nil {
		return nil, err
	}
	return e, nil
}

// Run carries out c (already verified) and returns its result.
func (e *Executor) Run(ctx context.Context, c *command.Command) command.Result {
	out, err := e.run(ctx, c)
	r := command.Result{ID: c.ID, Status: command.Succeeded}
	if err != nil {
		r.Status, r.Error = command.Failed, err.Error()
	}
	if err == nil && out != nil {
		b, merr := json.Marshal(out)
		switch {
		case merr != nil:
			r.Status, r.Error = command.Failed, merr.Error()
		case len(b) > command.MaxResultBytes-64<<10:
			r.Status, r.Error = command.Failed, fmt.Sprintf("output of %d bytes exceeds the result limit", len(b))
		default:
			r.Output = b
		}
	}
	return r
}

func (e *Executor) run(ctx context.Context, c *command.Command) (any, error) {
	a := c.Args
	switch c.Action {
	case command.Kill:
		pid, err := strconv.Atoi(a["pid"])
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("kill: pid %q is not a process id", a["pid"])
		}
		start, err := strconv.ParseUint(a["start_time"], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("kill: start_time %q: want the process start time in clock ticks since boot (/proc/PID/stat field 22)", a["start_time"])
		}
		tree := a["tree"] == "true"
		return Kill(pid, start, tree)
	case command.Quarantine:
		return e.Quarantine(a["path"], c.ID)
	case command.Restore:
		return e.Restore(a["quarantine_id"])
	case command.Block:
		p, err := netip.ParsePrefix(a["cidr"])
		if err != nil {
			addr, aerr := netip.ParseAddr(a["cidr"])
			if aerr != nil {
				return nil, fmt.Errorf("block: %q is not an IP address or CIDR", a["cidr"])
			}
			p = netip.PrefixFrom(addr, addr.BitLen())
		}
		d, err := time.ParseDuration(a["duration"])
		if err != nil || d <= 0 || d > 30*24*time.Hour {
			return nil, fmt.Errorf("block: duration %q: want a Go duration between 1s and 720h", a["duration"])
		}
		return e.Block(ctx, p.Masked(), d)
	case command.Unblock:
		p, err := netip.ParsePrefix(a["cidr"])
		if err != nil {
			addr, aerr := netip.ParseAddr(a["cidr"])
			if aerr != nil {
				return nil, fmt.Errorf("unblock: %q is not an IP address or CIDR", a["cidr"])
			}
			p = netip.PrefixFrom(addr, addr.BitLen())
		}
		return e.Unblock(ctx, p.Masked())
	case command.Isolate:
		allow, err := parsePrefixes(a["allow"])
		if err != nil {
			return nil, fmt.Errorf("isolate: allow: %w", err)
		}
		return e.Isolate(ctx, allow)
	case command.Release:
		return e.Release(ctx)
	case command.Collect:
		return e.Collect(ctx, c.ID, a["path"])
	case command.Query:
		return Query(a["name"], a)
	}
	return nil, fmt.Errorf("action %q is not supported by this agent", c.Action)
}
