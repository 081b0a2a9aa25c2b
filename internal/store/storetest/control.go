package storetest

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/store"
	"github.com/vigil-edr/vigil/internal/transport"
)

var secret = bytes.Repeat([]byte{0xab}, 32)

func token(id string, maxUses int, expires time.Time) transport.EnrollToken {
	return transport.EnrollToken{ID: id, SecretHash: secret, Note: "note " + id, CreatedAt: t0, ExpiresAt: expires, MaxUses: maxUses}
}

var transportTests = []test{
	{"EnrollTokenLifecycle", func(t *testing.T, b Backend) {
		must(t, b.CreateEnrollToken(ctx(t), token("tok1", 2, t0.Add(time.Hour))))
		wantErr(t, b.CreateEnrollToken(ctx(t), token("tok1", 1, time.Time{})), store.ErrConflict)
		toks, err := b.ListEnrollTokens(ctx(t))
		must(t, err)
		if len(toks) != 1 || toks[0].ID != "tok1" || toks[0].Note != "note tok1" || toks[0].MaxUses != 2 ||
			toks[0].Uses != 0 || toks[0].Revoked || !bytes.Equal(toks[0].SecretHash, secret) {
			t.Fatalf("ListEnrollTokens = %+v", toks)
		}
		sameTime(t, "CreatedAt", toks[0].CreatedAt, t0)
		sameTime(t, "ExpiresAt", toks[0].ExpiresAt, t0.Add(time.Hour))
		must(t, b.ConsumeEnrollToken(ctx(t), "tok1", secret, t0))
		toks, _ = b.ListEnrollTokens(ctx(t))
		if toks[0].Uses != 1 {
			t.Errorf("Uses = %d after one consume", toks[0].Uses)
		}
		wantErr(t, b.RevokeEnrollToken(ctx(t), "nope"), store.ErrNotFound)
		must(t, b.RevokeEnrollToken(ctx(t), "tok1"))
		wantErr(t, b.ConsumeEnrollToken(ctx(t), "tok1", secret, t0), transport.ErrTokenInvalid)
		toks, _ = b.ListEnrollTokens(ctx(t))
		if !toks[0].Revoked || toks[0].Uses != 1 {
			t.Errorf("after revoke: %+v", toks[0])
		}
	}},
	{"ConsumeEnrollTokenRules", func(t *testing.T, b Backend) {
		must(t, b.CreateEnrollToken(ctx(t), token("limited", 2, t0.Add(time.Hour))))
		must(t, b.CreateEnrollToken(ctx(t), token("unlimited", 0, time.Time{})))
		must(t, b.CreateEnrollToken(ctx(t), token("expiring", 0, t0.Add(time.Minute))))
		for _, tc := range []struct {
			name string
			id   string
			hash []byte
			now  time.Time
			ok   bool
		}{
			{"first use", "limited", secret, t0, true},
			{"wrong secret", "limited", []byte("wrong"), t0, false},
			{"nil secret", "limited", nil, t0, false},
			{"unknown id", "nope", secret, t0, false},
			{"second use", "limited", secret, t0, true},
			{"used up", "limited", secret, t0, false},
			{"before expiry", "expiring", secret, t0.Add(time.Minute - time.Nanosecond), true},
			{"at expiry", "expiring", secret, t0.Add(time.Minute), false},
			{"after expiry", "expiring", secret, t0.Add(time.Hour), false},
			{"zero expiry never expires", "unlimited", secret, t0.Add(100 * 365 * 24 * time.Hour), true},
		} {
			err := b.ConsumeEnrollToken(ctx(t), tc.id, tc.hash, tc.now)
			if tc.ok && err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			if !tc.ok && !errors.Is(err, transport.ErrTokenInvalid) {
				t.Errorf("%s: error %v, want ErrTokenInvalid", tc.name, err)
			}
		}
		for range 5 {
			must(t, b.ConsumeEnrollToken(ctx(t), "unlimited", secret, t0))
		}
	}},
	{"ConsumeEnrollTokenRace", func(t *testing.T, b Backend) {
		const uses, racers = 3, 16
		must(t, b.CreateEnrollToken(ctx(t), token("race", uses, t0.Add(time.Hour))))
		var wg sync.WaitGroup
		var mu sync.Mutex
		won, lost := 0, 0
		for range racers {
			wg.Go(func() {
				err := b.ConsumeEnrollToken(ctx(t), "race", secret, t0)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won++
				case errors.Is(err, transport.ErrTokenInvalid):
					lost++
				default:
					t.Errorf("consume: %v", err)
				}
			})
		}
		wg.Wait()
		if won != uses || lost != racers-uses {
			t.Errorf("%d racers for %d uses: %d won, %d lost", racers, uses, won, lost)
		}
		toks, err := b.ListEnrollTokens(ctx(t))
		must(t, err)
		if toks[0].Uses != uses {
			t.Errorf("Uses = %d, want %d", toks[0].Uses, uses)
		}
	}},
	{"Agents", func(t *testing.T, b Backend) {
		a := transport.Agent{ID: "agent-b", Hostname: "web-1", OS: "linux", Arch: "amd64", Version: "0.1.0",
			CertSerial: "0a1b", CertNotAfter: t0.Add(24 * time.Hour), EnrolledAt: t0, LastSeen: t0}
		_, err := b.GetAgent(ctx(t), "agent-b")
		wantErr(t, err, store.ErrNotFound)
		must(t, b.PutAgent(ctx(t), a))
		must(t, b.PutAgent(ctx(t), transport.Agent{ID: "agent-a", Hostname: "db-1", EnrolledAt: t0}))
		got, err := b.GetAgent(ctx(t), "agent-b")
		must(t, err)
		if got.Hostname != "web-1" || got.OS != "linux" || got.Arch != "amd64" || got.Version != "0.1.0" ||
			got.CertSerial != "0a1b" || got.Revoked || !got.RevokedAt.IsZero() {
			t.Errorf("GetAgent = %+v", got)
		}
		sameTime(t, "CertNotAfter", got.CertNotAfter, a.CertNotAfter)
		sameTime(t, "EnrolledAt", got.EnrolledAt, t0)
		// PutAgent replaces (a renewed certificate).
		a.CertSerial, a.Version = "0c0d", "0.2.0"
		must(t, b.PutAgent(ctx(t), a))
		got, _ = b.GetAgent(ctx(t), "agent-b")
		if got.CertSerial != "0c0d" || got.Version != "0.2.0" {
			t.Errorf("after replace: %+v", got)
		}
		list, err := b.ListAgents(ctx(t))
		must(t, err)
		if len(list) != 2 || list[0].ID != "agent-a" || list[1].ID != "agent-b" {
			t.Errorf("ListAgents = %+v", list)
		}
		// LastSeen moves forward only.
		must(t, b.TouchAgent(ctx(t), "agent-b", t0.Add(time.Minute)))
		must(t, b.TouchAgent(ctx(t), "agent-b", t0.Add(time.Second)))
		got, _ = b.GetAgent(ctx(t), "agent-b")
		sameTime(t, "LastSeen", got.LastSeen, t0.Add(time.Minute))
		wantErr(t, b.TouchAgent(ctx(t), "nope", t0), store.ErrNotFound)
		// A heartbeat's health: stored with its time, never replaced by an
		// older one, kept by PutAgent (a renewal rewrites the row).
		if got.Health != nil || !got.HealthAt.IsZero() {
			t.Errorf("health before any heartbeat: %q at %v", got.Health, got.HealthAt)
		}
		must(t, b.TouchAgentHealth(ctx(t), "agent-b", t0.Add(2*time.Minute), []byte(`{"n":2}`)))
		must(t, b.TouchAgentHealth(ctx(t), "agent-b", t0.Add(90*time.Second), []byte(`{"n":1}`)))
		got, _ = b.GetAgent(ctx(t), "agent-b")
		if string(got.Health) != `{"n":2}` {
			t.Errorf("Health = %q, want the newest", got.Health)
		}
		sameTime(t, "HealthAt", got.HealthAt, t0.Add(2*time.Minute))
		sameTime(t, "LastSeen after heartbeat", got.LastSeen, t0.Add(2*time.Minute))
		must(t, b.PutAgent(ctx(t), got))
		if got, _ = b.GetAgent(ctx(t), "agent-b"); string(got.Health) != `{"n":2}` {
			t.Errorf("Health after PutAgent = %q", got.Health)
		}
		wantErr(t, b.TouchAgentHealth(ctx(t), "nope", t0, nil), store.ErrNotFound)

		revoked, err := b.RevokedAgents(ctx(t))
		must(t, err)
		if len(revoked) != 0 {
			t.Errorf("RevokedAgents = %v before any revocation", revoked)
		}
		must(t, b.RevokeAgent(ctx(t), "agent-b", t0.Add(time.Hour)))
		must(t, b.RevokeAgent(ctx(t), "agent-b", t0.Add(2*time.Hour))) // keeps the first time
		wantErr(t, b.RevokeAgent(ctx(t), "nope", t0), store.ErrNotFound)
		got, _ = b.GetAgent(ctx(t), "agent-b")
		if !got.Revoked {
			t.Error("agent not revoked")
		}
		sameTime(t, "RevokedAt", got.RevokedAt, t0.Add(time.Hour))
		revoked, err = b.RevokedAgents(ctx(t))
		must(t, err)
		if !slices.Equal(revoked, []string{"agent-b"}) {
			t.Errorf("RevokedAgents = %v", revoked)
		}
	}},
}

func apiToken(id string, hash byte) authz.Token {
	return authz.Token{ID: id, Name: "ci " + id, Role: authz.RoleAnalyst, Hash: bytes.Repeat([]byte{hash}, 32),
		CreatedAt: t0, ExpiresAt: t0.Add(30 * 24 * time.Hour)}
}

var authzTests = []test{
	{"Tokens", func(t *testing.T, b Backend) {
		must(t, b.CreateToken(ctx(t), apiToken("t1", 1)))
		must(t, b.CreateToken(ctx(t), apiToken("t2", 2)))
		wantErr(t, b.CreateToken(ctx(t), apiToken("t1", 3)), store.ErrConflict) // same id
		wantErr(t, b.CreateToken(ctx(t), apiToken("t3", 1)), store.ErrConflict) // same hash

		got, err := b.TokenByHash(ctx(t), bytes.Repeat([]byte{1}, 32))
		must(t, err)
		if got.ID != "t1" || got.Name != "ci t1" || got.Role != authz.RoleAnalyst || got.Revoked || !got.LastUsed.IsZero() {
			t.Errorf("TokenByHash = %+v", got)
		}
		sameTime(t, "ExpiresAt", got.ExpiresAt, t0.Add(30*24*time.Hour))
		_, err = b.TokenByHash(ctx(t), bytes.Repeat([]byte{9}, 32))
		wantErr(t, err, store.ErrNotFound)
		_, err = b.TokenByHash(ctx(t), nil)
		wantErr(t, err, store.ErrNotFound)

		must(t, b.TouchToken(ctx(t), "t1", t0.Add(time.Hour)))
		must(t, b.TouchToken(ctx(t), "t1", t0.Add(time.Minute)))
		wantErr(t, b.TouchToken(ctx(t), "nope", t0), store.ErrNotFound)
		must(t, b.RevokeToken(ctx(t), "t1"))
		wantErr(t, b.RevokeToken(ctx(t), "nope"), store.ErrNotFound)
		got, err = b.TokenByHash(ctx(t), bytes.Repeat([]byte{1}, 32))
		must(t, err) // revoked tokens are still found: the caller decides
		if !got.Revoked {
			t.Error("token not revoked")
		}
		sameTime(t, "LastUsed", got.LastUsed, t0.Add(time.Hour))
		list, err := b.ListTokens(ctx(t))
		must(t, err)
		if len(list) != 2 || list[0].ID != "t1" || list[1].ID != "t2" {
			t.Errorf("ListTokens = %+v", list)
		}
	}},
}

var rulesetTests = []test{
	{"DisabledRules", func(t *testing.T, b Backend) {
		got, err := b.DisabledRules(ctx(t))
		must(t, err)
		if len(got) != 0 {
			t.Errorf("DisabledRules = %v on an empty store", got)
		}
		must(t, b.SetRuleEnabled(ctx(t), "rule-b", false))
		must(t, b.SetRuleEnabled(ctx(t), "rule-a", false))
		must(t, b.SetRuleEnabled(ctx(t), "rule-a", false)) // idempotent
		must(t, b.SetRuleEnabled(ctx(t), "rule-c", true))  // enabling an enabled rule
		got, err = b.DisabledRules(ctx(t))
		must(t, err)
		if !slices.Equal(got, []string{"rule-a", "rule-b"}) {
			t.Errorf("DisabledRules = %v", got)
		}
		must(t, b.SetRuleEnabled(ctx(t), "rule-b", true))
		got, _ = b.DisabledRules(ctx(t))
		if !slices.Equal(got, []string{"rule-a"}) {
			t.Errorf("after enabling rule-b: %v", got)
		}
	}},
}
