package action

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Table is the nftables table that holds every rule Vigil adds. Nothing
// else is ever touched: releasing isolation and removing the last block
// delete this table, which leaves the host's own rules exactly as they were.
const Table = "inet vigil"

// netState is what the agent has applied to the host's network, persisted
// in DataDir/actions/network.json and applied again at start (rules live in
// the kernel, so a restarted agent finds them in place, but a reboot clears
// them).
type netState struct {
	Isolated bool           `json:"isolated"`
	Server   []netip.Addr   `json:"server,omitempty"` // reachable while isolated
	Allow    []netip.Prefix `json:"allow,omitempty"`  // reachable while isolated
	Blocks   []netBlock     `json:"blocks,omitempty"`
}

type netBlock struct {
	Prefix  netip.Prefix `json:"cidr"`
	Expires time.Time    `json:"expires"`
}

// NetResult is the output of isolate, release, block and unblock: the
// network state after the change.
type NetResult struct {
	Isolated bool       `json:"isolated"`
	Server   []string   `json:"server,omitempty"`
	Allow    []string   `json:"allow,omitempty"`
	Blocks   []netBlock `json:"blocks,omitempty"`
}

func (e *Executor) statePath() string { return filepath.Join(e.dir, "network.json") }

func (e *Executor) loadNet() (netState, error) {
	var s netState
	b, err := os.ReadFile(e.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: %w", e.statePath(), err)
	}
	now := e.opts.Now()
	s.Blocks = slices.DeleteFunc(s.Blocks, func(b netBlock) bool { return !now.Before(b.Expires) })
	return s, nil
}

// commitNet applies s to the kernel, then saves it. Applying first means a
// saved state was always applicable.
func (e *Executor) commitNet(ctx context.Context, s netState) (*NetResult, error) {
	now := e.opts.Now()
	s.Blocks = slices.DeleteFunc(s.Blocks, func(b netBlock) bool { return !now.Before(b.Expires) })
	if err := e.nft(ctx, ruleset(s, now)); err != nil {
		return nil, err
	}
	b, _ := json.MarshalIndent(s, "", "  ")
	tmp := e.statePath() + ".tmp"
	if err := writeSynced(tmp, b, 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, e.statePath()); err != nil {
		return nil, err
	}
	r := &NetResult{Isolated: s.Isolated, Blocks: s.Blocks}
	for _, a := range s.Server {
		r.Server = append(r.Server, a.String())
	}
	for _, p := range s.Allow {
		r.Allow = append(r.Allow, p.String())
	}
	return r, nil
}

// ApplySaved applies the saved network state again (at agent start), with
// expired blocks dropped. Without saved state it does nothing.
func (e *Executor) ApplySaved(ctx context.Context) error {
	e.netMu.Lock()
	defer e.netMu.Unlock()
	s, err := e.loadNet()
	if err != nil {
		return err
	}
	if !s.Isolated && len(s.Blocks) == 0 {
		return nil
	}
	if s.Isolated {
		// The server's address may have changed; keep the saved ones too.
		if addrs, err := e.serverAddrs(ctx); err == nil {
			s.Server = union(s.Server, addrs)
		}
	}
	_, err = e.commitNet(ctx, s)
	return err
}

func (e *Executor) serverAddrs(ctx context.Context) ([]netip.Addr, error) {
	if e.opts.ServerAddrs == nil {
		return nil, errors.New("no server address resolver")
	}
	return e.opts.ServerAddrs(ctx)
}

// Isolate drops all traffic in and out except loopback, the Vigil server's
// addresses, the configured allow-list and extra (and IPv6 neighbour
// discovery, without which the server may be unreachable over IPv6).
func (e *Executor) Isolate(ctx context.Context, extra []netip.Prefix) (*NetResult, error) {
	e.netMu.Lock()
	defer e.netMu.Unlock()
	addrs, err := e.serverAddrs(ctx)
	if err != nil || len(addrs) == 0 {
		return nil, fmt.Errorf("isolate: cannot tell the server's address, so isolating would cut the agent off: %v", err)
	}
	s, err := e.loadNet()
	if err != nil {
		return nil, err
	}
	s.Isolated = true
	s.Server = union(s.Server, addrs)
	for _, p := range append(slices.Clone(e.opts.IsolateAllow), extra...) {
		if !slices.Contains(s.Allow, p.Masked()) {
			s.Allow = append(s.Allow, p.Masked())
		}
	}
	return e.commitNet(ctx, s)
}

// Release ends isolation; blocks stay.
func (e *Executor) Release(ctx context.Context) (*NetResult, error) {
	e.netMu.Lock()
	defer e.netMu.Unlock()
	s, err := e.loadNet()
	if err != nil {
		return nil, err
	}
	s.Isolated, s.Server, s.Allow = false, nil, nil
	return e.commitNet(ctx, s)
}

// Block drops traffic from and to p for d (the kernel expires the set
// element by itself, so the block ends on time even if the agent is down).
// A network holding a server address is refused.
func (e *Executor) Block(ctx context.Context, p netip.Prefix, d time.Duration) (*NetResult, error) {
	e.netMu.Lock()
	defer e.netMu.Unlock()
	if addrs, err := e.serverAddrs(ctx); err == nil {
		for _, a := range addrs {
			if p.Contains(a) {
				return nil, fmt.Errorf("block: %s holds the Vigil server's address %s", p, a)
			}
		}
	}
	if p.Addr().IsLoopback() {
		return nil, fmt.Errorf("block: %s is loopback", p)
	}
	s, err := e.loadNet()
	if err != nil {
		return nil, err
	}
	s.Blocks = slices.DeleteFunc(s.Blocks, func(b netBlock) bool { return b.Prefix == p })
	for _, b := range s.Blocks {
		if b.Prefix.Overlaps(p) {
			return nil, fmt.Errorf("block: %s overlaps the block on %s; unblock that first", p, b.Prefix)
		}
	}
	s.Blocks = append(s.Blocks, netBlock{Prefix: p, Expires: e.opts.Now().Add(d).UTC()})
	return e.commitNet(ctx, s)
}

// Unblock removes the block on p.
func (e *Executor) Unblock(ctx context.Context, p netip.Prefix) (*NetResult, error) {
	e.netMu.Lock()
	defer e.netMu.Unlock()
	s, err := e.loadNet()
	if err != nil {
		return nil, err
	}
	n := len(s.Blocks)
	s.Blocks = slices.DeleteFunc(s.Blocks, func(b netBlock) bool { return b.Prefix == p })
	if len(s.Blocks) == n {
		return nil, fmt.Errorf("unblock: %s is not blocked", p)
	}
	return e.commitNet(ctx, s)
}

// ruleset is the nft script replacing table inet vigil with s in one
// transaction ("table …" then "delete table …" so the delete never fails),
// or only deleting it when s holds nothing.
func ruleset(s netState, now time.Time) string {
	var b strings.Builder
	b.WriteString("table " + Table + " {}\ndelete table " + Table + "\n")
	if !s.Isolated && len(s.Blocks) == 0 {
		return b.String()
	}
	var b4, b6 []string
	for _, x := range s.Blocks {
		// Rounded up: the kernel never ends a block before the state does.
		left := max(int((x.Expires.Sub(now)+time.Second-1)/time.Second), 1)
		el := fmt.Sprintf("%s timeout %ds", x.Prefix, left)
		if x.Prefix.Addr().Is4() {
			b4 = append(b4, el)
		} else {
			b6 = append(b6, el)
		}
	}
	var a4, a6 []string
	for _, a := range s.Server {
		if a = a.Unmap(); a.Is4() {
			a4 = append(a4, a.String())
		} else {
			a6 = append(a6, a.String())
		}
	}
	for _, p := range s.Allow {
		if p.Addr().Is4() {
			a4 = append(a4, p.String())
		} else {
			a6 = append(a6, p.String())
		}
	}
	b.WriteString("table " + Table + " {\n")
	set := func(name, typ string, els []string) {
		fmt.Fprintf(&b, "\tset %s {\n\t\ttype %s\n\t\tflags interval,timeout\n", name, typ)
		if len(els) > 0 {
			fmt.Fprintf(&b, "\t\telements = { %s }\n", strings.Join(els, ", "))
		}
		b.WriteString("\t}\n")
	}
	set("block4", "ipv4_addr", b4)
	set("block6", "ipv6_addr", b6)
	if s.Isolated {
		setAllow := func(name, typ string, els []string) {
			fmt.Fprintf(&b, "\tset %s {\n\t\ttype %s\n\t\tflags interval\n\t\tauto-merge\n", name, typ)
			if len(els) > 0 {
				fmt.Fprintf(&b, "\t\telements = { %s }\n", strings.Join(els, ", "))
			}
			b.WriteString("\t}\n")
		}
		setAllow("allow4", "ipv4_addr", a4)
		setAllow("allow6", "ipv6_addr", a6)
	}
	chain := func(name, hook, dir, lo string) {
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype filter hook %s priority filter - 10; policy accept;\n", name, hook)
		fmt.Fprintf(&b, "\t\tip %s @block4 drop\n\t\tip6 %s @block6 drop\n", dir, dir)
		if s.Isolated {
			fmt.Fprintf(&b, "\t\t%s \"lo\" accept\n", lo)
			fmt.Fprintf(&b, "\t\tip %s @allow4 accept\n\t\tip6 %s @allow6 accept\n", dir, dir)
			b.WriteString("\t\ticmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert } accept\n")
			b.WriteString("\t\tdrop\n")
		}
		b.WriteString("\t}\n")
	}
	chain("input", "input", "saddr", "iif")
	chain("output", "output", "daddr", "oif")
	b.WriteString("}\n")
	return b.String()
}

func (e *Executor) nft(ctx context.Context, script string) error {
	args := append(slices.Clone(e.opts.NFT[1:]), "-f", "-")
	cmd := exec.CommandContext(ctx, e.opts.NFT[0], args...)
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return errors.New("nft is not installed (Debian/Ubuntu: apt-get install nftables)")
		}
		return fmt.Errorf("nft: %v: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}

func union(a, b []netip.Addr) []netip.Addr {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not an IP address or CIDR", f)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
