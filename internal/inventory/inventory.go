// Package inventory is the server's view of each host's inventory: it reads
// the snapshot chunks the agent's inventory sensor sends (events of category
// inventory_snapshot, format in docs/inventory.md), has a Store stage them,
// and once every chunk of a snapshot has arrived the Store replaces the
// host's inventory with it, kind by kind. The latest complete inventory is
// what the API serves (GET /api/v1/hosts/{id}/inventory) and what hygiene
// and vulnerability matching read.
//
// Change events (package_installed, user_added, …) are ordinary events: they
// are stored and matched like any other and need nothing from this package.
//
// Only cmd/vigil wires this package; the pipeline calls Recorder.AfterStore,
// web and the hygiene stage read through Store. It imports the standard
// library, internal/event and internal/eventstore, never a storage backend.
//
// # Ordering and concurrency
//
// Chunks may arrive in any order, in several batches, more than once, and
// from several detection workers at the same time; a Store applies a
// snapshot exactly when its last missing chunk is staged (atomically with
// staging it), never applies one older than the host's current inventory,
// and ignores chunks of a snapshot already applied. Recorder is safe for
// concurrent use when its Store is.
package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/vigil-edr/vigil/internal/event"
	"github.com/vigil-edr/vigil/internal/eventstore"
)

// Kinds of item, as the agent names them in ItemKind.
const (
	KindOS      = "os"
	KindPackage = "package"
	KindUser    = "user"
	KindGroup   = "group"
	KindPort    = "listening_port"
	KindService = "service"
	KindModule  = "kernel_module"
)

// Category is the log source category of snapshot chunks.
const Category = "inventory_snapshot"

// Limits on one chunk; an agent never comes near them.
const (
	MaxChunks     = 10_000
	MaxChunkItems = 50_000
	maxSnapshotID = 100
	StagingTTL    = 24 * time.Hour // staged chunks of an incomplete snapshot older than this are dropped
)

// ErrMalformed: an inventory_snapshot event that does not follow the format.
var ErrMalformed = errors.New("inventory: malformed snapshot chunk")

// OS, Package, User, Group, Port, Service and Module are the items of each
// kind, in the JSON shapes the agent sends.
type (
	OS struct {
		Hostname      string `json:"hostname"`
		Name          string `json:"name"`
		ID            string `json:"id"`
		IDLike        string `json:"id_like,omitempty"`
		VersionID     string `json:"version_id"`
		Codename      string `json:"codename,omitempty"`
		PrettyName    string `json:"pretty_name"`
		KernelName    string `json:"kernel_name"`
		KernelRelease string `json:"kernel_release"`
		KernelVersion string `json:"kernel_version"`
		Machine       string `json:"machine"`
	}
	Package struct {
		Name          string `json:"name"`
		Version       string `json:"version"`
		Arch          string `json:"arch"`
		Manager       string `json:"manager"` // dpkg, rpm
		Source        string `json:"source,omitempty"`
		SourceVersion string `json:"source_version,omitempty"`
		Status        string `json:"status"`
	}
	User struct {
		Name  string `json:"name"`
		UID   uint32 `json:"uid"`
		GID   uint32 `json:"gid"`
		Gecos string `json:"gecos,omitempty"`
		Home  string `json:"home"`
		Shell string `json:"shell"`
	}
	Group struct {
		Name    string   `json:"name"`
		GID     uint32   `json:"gid"`
		Members []string `json:"members,omitempty"`
	}
	Port struct {
		Protocol    string `json:"protocol"`
		LocalIP     string `json:"local_ip"`
		LocalPort   uint16 `json:"local_port"`
		UID         uint32 `json:"uid"`
		User        string `json:"user,omitempty"`
		PID         int    `json:"pid,omitempty"`
		Image       string `json:"image,omitempty"`
		CommandLine string `json:"command_line,omitempty"`
	}
	Service struct {
		Name      string `json:"name"`
		State     string `json:"state"`
		Running   bool   `json:"running"`
		Path      string `json:"path,omitempty"`
		ExecStart string `json:"exec_start,omitempty"`
	}
	Module struct {
		Name   string   `json:"name"`
		Size   uint64   `json:"size"`
		Refs   int64    `json:"refs"`
		UsedBy []string `json:"used_by,omitempty"`
		State  string   `json:"state"`
		Taint  string   `json:"taint,omitempty"`
	}
)

// Host is a host's latest complete inventory. A host without one has an
// empty SnapshotID and no items.
type Host struct {
	AgentID    string    `json:"agent_id"`
	SnapshotID string    `json:"snapshot_id"`
	Collected  time.Time `json:"collected_at"` // when the agent collected it
	Updated    time.Time `json:"updated_at"`   // when the server completed it
	OS         *OS       `json:"os"`
	Packages   []Package `json:"packages"`
	Users      []User    `json:"users"`
	Groups     []Group   `json:"groups"`
	Ports      []Port    `json:"listening_ports"`
	Services   []Service `json:"services"`
	Modules    []Module  `json:"kernel_modules"`
}

// Item is one stored item: its kind, a name to find it by (the package,
// user, group, service or module name; "tcp/127.0.0.1/22" for a port; "os"
// for the OS) and its canonical JSON.
type Item struct {
	Kind, Name string
	Data       []byte
}

// Chunk is one inventory_snapshot event, validated.
type Chunk struct {
	SnapshotID   string
	Index, Count int
	Kind         string
	Collected    time.Time
	Items        []Item
}

// ChunkFromEvent reads a snapshot chunk. ok is false for events of other
// categories; err (wrapping ErrMalformed) says what is wrong with a chunk
// that does not follow the format. Items are re-encoded from the typed
// structs, so unknown fields and anything not matching a type are dropped.
func ChunkFromEvent(ev *event.Event) (c Chunk, ok bool, err error) {
	if !ev.HasCategory(Category) {
		return c, false, nil
	}
	bad := func(format string, args ...any) (Chunk, bool, error) {
		return Chunk{}, true, fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
	get := func(name string) string { v, _ := ev.Get(name); return v }
	c.SnapshotID, c.Kind, c.Collected = get("SnapshotId"), get("ItemKind"), ev.Time.UTC()
	if n := len(c.SnapshotID); n == 0 || n > maxSnapshotID || !idChars(c.SnapshotID) {
		return bad("SnapshotId %.100q", c.SnapshotID)
	}
	if c.Index, err = strconv.Atoi(get("ChunkIndex")); err != nil {
		return bad("ChunkIndex %.20q", get("ChunkIndex"))
	}
	if c.Count, err = strconv.Atoi(get("ChunkCount")); err != nil || c.Count < 1 || c.Count > MaxChunks || c.Index < 0 || c.Index >= c.Count {
		return bad("chunk %d of %.20q", c.Index, get("ChunkCount"))
	}
	if c.Collected.IsZero() {
		return bad("no time")
	}
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(get("Items")), &raw); err != nil {
		return bad("Items: %v", err)
	}
	if len(raw) > MaxChunkItems {
		return bad("%d items", len(raw))
	}
	if c.Kind == KindOS && len(raw) > 1 {
		return bad("%d os items", len(raw))
	}
	c.Items = make([]Item, 0, len(raw))
	for i, r := range raw {
		it, err := Canonical(c.Kind, r)
		if err != nil {
			return bad("item %d: %v", i, err)
		}
		c.Items = append(c.Items, it)
	}
	return c, true, nil
}

func idChars(s string) bool {
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-') {
			return false
		}
	}
	return true
}

// Canonical decodes one item of kind and returns it re-encoded with its
// name. An unknown kind or an item without a name is an error.
func Canonical(kind string, raw []byte) (Item, error) {
	var (
		v    any
		name func() string
	)
	switch kind {
	case KindOS:
		x := &OS{}
		v, name = x, func() string { return "os" }
	case KindPackage:
		x := &Package{}
		v, name = x, func() string { return x.Name }
	case KindUser:
		x := &User{}
		v, name = x, func() string { return x.Name }
	case KindGroup:
		x := &Group{}
		v, name = x, func() string { return x.Name }
	case KindPort:
		x := &Port{}
		v, name = x, func() string {
			if x.Protocol == "" {
				return ""
			}
			return x.Protocol + "/" + x.LocalIP + "/" + strconv.Itoa(int(x.LocalPort))
		}
	case KindService:
		x := &Service{}
		v, name = x, func() string { return x.Name }
	case KindModule:
		x := &Module{}
		v, name = x, func() string { return x.Name }
	default:
		return Item{}, fmt.Errorf("unknown kind %.40q", kind)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return Item{}, err
	}
	n := name()
	if n == "" {
		return Item{}, errors.New("no name")
	}
	data, err := json.Marshal(v)
	return Item{Kind: kind, Name: n, Data: data}, err
}

// Add decodes a stored item into h.
func (h *Host) Add(it Item) error {
	var err error
	switch it.Kind {
	case KindOS:
		h.OS = &OS{}
		err = json.Unmarshal(it.Data, h.OS)
	case KindPackage:
		err = appendJSON(&h.Packages, it.Data)
	case KindUser:
		err = appendJSON(&h.Users, it.Data)
	case KindGroup:
		err = appendJSON(&h.Groups, it.Data)
	case KindPort:
		err = appendJSON(&h.Ports, it.Data)
	case KindService:
		err = appendJSON(&h.Services, it.Data)
	case KindModule:
		err = appendJSON(&h.Modules, it.Data)
	default:
		err = fmt.Errorf("unknown kind %q", it.Kind)
	}
	return err
}

func appendJSON[T any](list *[]T, data []byte) error {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*list = append(*list, v)
	return nil
}

// Store keeps staged chunks and the latest inventory per host.
// store/sqlite implements it.
type Store interface {
	// AddInventoryChunk stages c for agentID. When it completes its
	// snapshot (every index 0..Count-1 staged), the host's items of the
	// kinds in the snapshot are replaced by the snapshot's, in the same
	// transaction, and applied is true. A chunk of a snapshot collected
	// before the host's current one, or of the current one, is ignored.
	// Staged chunks older than a day without completing are dropped.
	AddInventoryChunk(ctx context.Context, agentID string, c Chunk, now time.Time) (applied bool, err error)
	// HostInventory returns agentID's latest inventory, items in name
	// order; an empty Host (AgentID set) when there is none.
	HostInventory(ctx context.Context, agentID string) (Host, error)
}

// Recorder feeds snapshot chunks from stored events to a Store.
type Recorder struct {
	Store  Store
	Logger *slog.Logger     // malformed chunks are logged here; nil discards
	Now    func() time.Time // default time.Now
	// Applied, if set, is called with the agent id after a chunk completed
	// (and applied) that agent's snapshot; it must not block.
	Applied func(agentID string)
}

// AfterStore stages the inventory chunks among evs (a batch the pipeline
// has just stored). A malformed chunk is logged and skipped: it can never
// become valid. A Store error is returned, so the batch is delivered again;
// staging is idempotent.
func (r *Recorder) AfterStore(ctx context.Context, evs []eventstore.Stored) error {
	for i := range evs {
		c, ok, err := ChunkFromEvent(evs[i].Event)
		if !ok {
			continue
		}
		if err != nil {
			if r.Logger != nil {
				r.Logger.Warn("inventory chunk skipped", "agent", evs[i].AgentID, "seq", evs[i].Seq, "err", err)
			}
			continue
		}
		now := time.Now
		if r.Now != nil {
			now = r.Now
		}
		applied, err := r.Store.AddInventoryChunk(ctx, evs[i].AgentID, c, now().UTC())
		if err != nil {
			return fmt.Errorf("inventory: %w", err)
		}
		if applied && r.Applied != nil {
			r.Applied(evs[i].AgentID)
		}
	}
	return nil
}
