package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
	"github.com/vigil-edr/vigil/internal/notify"
	"github.com/vigil-edr/vigil/internal/store"
)

func webhook(name string) *notify.Channel {
	return &notify.Channel{Name: name, Kind: notify.KindWebhook, Enabled: true, URL: "https://hooks.example.org/" + name,
		Secret: "secret-" + name}
}

func pendingIDs(t *testing.T, b Backend) []int64 {
	t.Helper()
	cs, err := b.PendingChanges(ctx(t), 100)
	must(t, err)
	ids := []int64{}
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}

var notifyTests = []test{
	{"ChannelsRoundTrip", func(t *testing.T, b Backend) {
		e := &notify.Channel{Name: "mail", Kind: notify.KindEmail, Enabled: false, SMTPAddr: "mail.example.org:587",
			SMTPTLS: notify.TLSStartTLS, Username: "u", Password: "p", From: "v@example.org", To: []string{"a@example.org", "b@example.org"}}
		w := webhook("w")
		must(t, b.CreateChannel(ctx(t), e))
		must(t, b.CreateChannel(ctx(t), w))
		if e.ID == 0 || w.ID <= e.ID || e.CreatedAt.IsZero() {
			t.Fatalf("ids %d, %d; created %v", e.ID, w.ID, e.CreatedAt)
		}
		got, err := b.GetChannel(ctx(t), e.ID)
		must(t, err)
		if got.Kind != notify.KindEmail || got.Enabled || got.Password != "p" || !slices.Equal(got.To, e.To) || got.SMTPTLS != notify.TLSStartTLS {
			t.Errorf("GetChannel = %+v", got)
		}
		w.Name, w.Secret = "renamed", "new-secret"
		must(t, b.UpdateChannel(ctx(t), w))
		all, err := b.ListChannels(ctx(t))
		must(t, err)
		if len(all) != 2 || all[1].Name != "renamed" || all[1].Secret != "new-secret" {
			t.Errorf("ListChannels = %+v", all)
		}
		wantErr(t, b.UpdateChannel(ctx(t), &notify.Channel{ID: 9999, Name: "x", Kind: notify.KindSlack}), store.ErrNotFound)
		_, err = b.GetChannel(ctx(t), 9999)
		wantErr(t, err, store.ErrNotFound)
		wantErr(t, b.DeleteChannel(ctx(t), 9999), store.ErrNotFound)
		must(t, b.DeleteChannel(ctx(t), e.ID))
		_, err = b.GetChannel(ctx(t), e.ID)
		wantErr(t, err, store.ErrNotFound)
	}},
	{"RoutesReferenceChannels", func(t *testing.T, b Backend) {
		c1, c2 := webhook("a"), webhook("b")
		must(t, b.CreateChannel(ctx(t), c1))
		must(t, b.CreateChannel(ctx(t), c2))
		r := &notify.Route{Name: "r", Enabled: true, MinLevel: "high", Tags: []string{"attack.t1059*"}, Hosts: []string{"web-*"},
			Channels: []int64{c2.ID, c1.ID}, OnStateChange: true, EscalateAfter: 15 * time.Minute, EscalateTo: []int64{c1.ID}}
		must(t, b.CreateRoute(ctx(t), r))
		got, err := b.GetRoute(ctx(t), r.ID)
		must(t, err)
		if got.Name != "r" || !got.Enabled || got.MinLevel != "high" || !slices.Equal(got.Tags, r.Tags) || !slices.Equal(got.Hosts, r.Hosts) ||
			!slices.Equal(got.Channels, []int64{c2.ID, c1.ID}) || !got.OnStateChange || got.EscalateAfter != 15*time.Minute ||
			!slices.Equal(got.EscalateTo, []int64{c1.ID}) {
			t.Errorf("GetRoute = %+v", got)
		}
		// A channel a route names cannot be deleted; an unknown channel cannot be named.
		wantErr(t, b.DeleteChannel(ctx(t), c1.ID), store.ErrConflict)
		wantErr(t, b.CreateRoute(ctx(t), &notify.Route{Name: "bad", Channels: []int64{424242}}), store.ErrConflict)
		r.Channels, r.EscalateTo, r.EscalateAfter = []int64{c2.ID}, nil, 0
		must(t, b.UpdateRoute(ctx(t), r))
		must(t, b.DeleteChannel(ctx(t), c1.ID)) // no longer named
		wantErr(t, b.UpdateRoute(ctx(t), &notify.Route{ID: r.ID, Name: "r", Channels: []int64{c1.ID}}), store.ErrConflict)
		wantErr(t, b.UpdateRoute(ctx(t), &notify.Route{ID: 9999, Name: "r", Channels: []int64{c2.ID}}), store.ErrNotFound)
		rs, err := b.ListRoutes(ctx(t))
		must(t, err)
		if len(rs) != 1 || !slices.Equal(rs[0].Channels, []int64{c2.ID}) || len(rs[0].EscalateTo) != 0 {
			t.Errorf("ListRoutes = %+v", rs)
		}
		must(t, b.DeleteRoute(ctx(t), r.ID))
		wantErr(t, b.DeleteRoute(ctx(t), r.ID), store.ErrNotFound)
		must(t, b.DeleteChannel(ctx(t), c2.ID))
	}},
	{"AlertChangeFeed", func(t *testing.T, b Backend) {
		a := newAlert(t, b, "r1", "h1", "high", t0)
		must(t, b.AddOccurrence(ctx(t), a.ID, t0.Add(time.Minute), []int64{11}, 10)) // not a change
		must(t, b.SetState(ctx(t), a.ID, alert.StateNew, alert.StateAcknowledged, "alice", t0.Add(2*time.Minute), ""))
		wantErr(t, b.SetState(ctx(t), a.ID, alert.StateNew, alert.StateResolved, "bob", t0, ""), store.ErrConflict) // lost: no change
		cs, err := b.PendingChanges(ctx(t), 100)
		must(t, err)
		if len(cs) != 2 {
			t.Fatalf("PendingChanges = %+v, want created and acknowledged", cs)
		}
		if c := cs[0]; c.Kind != notify.ChangeCreated || c.AlertID != a.ID || c.To != alert.StateNew || c.At.IsZero() ||
			c.Alert == nil || c.Alert.RuleID != "r1" {
			t.Errorf("created change %+v", c)
		}
		if c := cs[1]; c.Kind != notify.ChangeState || c.From != alert.StateNew || c.To != alert.StateAcknowledged ||
			c.By != "alice" || !c.At.Equal(t0.Add(2*time.Minute)) || c.Alert.State != alert.StateAcknowledged || c.Alert.Count != 2 {
			t.Errorf("state change %+v (alert %+v)", c, c.Alert)
		}
		if cs[1].ID <= cs[0].ID {
			t.Error("changes not oldest first")
		}
		if one, _ := b.PendingChanges(ctx(t), 1); len(one) != 1 || one[0].ID != cs[0].ID {
			t.Errorf("limit 1: %+v", one)
		}
	}},
	{"CommitIsAtomicAndConsumesOnce", func(t *testing.T, b Backend) {
		c := webhook("c")
		must(t, b.CreateChannel(ctx(t), c))
		r := &notify.Route{Name: "r", Enabled: true, Channels: []int64{c.ID}}
		must(t, b.CreateRoute(ctx(t), r))
		a := newAlert(t, b, "r1", "h1", "high", t0)
		ids := pendingIDs(t, b)
		msg := notify.Message{Event: notify.EventCreated, Alert: notify.AlertInfo{ID: a.ID, RuleTitle: "t <&>", Tags: []string{}}}
		batch := &notify.Batch{Changes: ids,
			Deliveries: []notify.Delivery{{ChannelID: c.ID, Message: msg, NextAt: t0, CreatedAt: t0}},
			Schedule:   []notify.Escalation{{AlertID: a.ID, RouteID: r.ID, DueAt: t0.Add(time.Minute)}}}
		must(t, b.Commit(ctx(t), batch))
		if batch.Deliveries[0].ID == 0 || len(pendingIDs(t, b)) != 0 {
			t.Fatalf("after commit: delivery id %d, pending %v", batch.Deliveries[0].ID, pendingIDs(t, b))
		}
		// The same changes again: a conflict, and nothing of the batch applied.
		again := &notify.Batch{Changes: ids, Deliveries: []notify.Delivery{{ChannelID: c.ID, Message: msg, NextAt: t0, CreatedAt: t0}}}
		wantErr(t, b.Commit(ctx(t), again), store.ErrConflict)
		ds, err := b.Deliveries(ctx(t), 10)
		must(t, err)
		if len(ds) != 1 || ds[0].State != notify.DeliveryPending || ds[0].Message.Alert.RuleTitle != "t <&>" || ds[0].ChannelID != c.ID {
			t.Fatalf("Deliveries = %+v", ds)
		}
		// Escalations: due at their time, consumed once.
		if due, _ := b.DueEscalations(ctx(t), t0, 10); len(due) != 0 {
			t.Errorf("escalation due early: %+v", due)
		}
		due, err := b.DueEscalations(ctx(t), t0.Add(time.Minute), 10)
		must(t, err)
		if len(due) != 1 || due[0].AlertID != a.ID || due[0].RouteID != r.ID || !due[0].DueAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("DueEscalations = %+v", due)
		}
		must(t, b.Commit(ctx(t), &notify.Batch{Escalations: []int64{due[0].ID}}))
		wantErr(t, b.Commit(ctx(t), &notify.Batch{Escalations: []int64{due[0].ID}}), store.ErrConflict)
		// Deleting a route drops its escalations.
		must(t, b.Commit(ctx(t), &notify.Batch{Schedule: []notify.Escalation{{AlertID: a.ID, RouteID: r.ID, DueAt: t0}}}))
		must(t, b.DeleteRoute(ctx(t), r.ID))
		if due, _ := b.DueEscalations(ctx(t), t0.Add(time.Hour), 10); len(due) != 0 {
			t.Errorf("escalations of a deleted route: %+v", due)
		}
	}},
	{"ClaimLeaseFinishPrune", func(t *testing.T, b Backend) {
		msg := notify.Message{Event: notify.EventTest, Alert: notify.AlertInfo{Tags: []string{}}}
		batch := &notify.Batch{}
		for i := range 3 {
			batch.Deliveries = append(batch.Deliveries, notify.Delivery{ChannelID: 1, Message: msg, NextAt: t0.Add(time.Duration(i) * time.Second), CreatedAt: t0})
		}
		must(t, b.Commit(ctx(t), batch))
		got, err := b.ClaimDeliveries(ctx(t), t0.Add(time.Second), time.Minute, 10)
		must(t, err)
		if len(got) != 2 || got[0].ID != batch.Deliveries[0].ID || got[1].ID != batch.Deliveries[1].ID {
			t.Fatalf("claim at +1s = %+v, want the first two, oldest due first", got)
		}
		// Leased: not claimable again until the lease ends.
		if again, _ := b.ClaimDeliveries(ctx(t), t0.Add(2*time.Second), time.Minute, 10); len(again) != 1 || again[0].ID != batch.Deliveries[2].ID {
			t.Fatalf("claim during the lease = %+v", again)
		}
		if later, _ := b.ClaimDeliveries(ctx(t), t0.Add(61*time.Second), time.Minute, 1); len(later) != 1 || later[0].ID != got[0].ID {
			t.Fatalf("claim after the lease = %+v", later)
		}
		sent := got[0]
		sent.State, sent.Attempts, sent.DoneAt = notify.DeliverySent, 1, t0.Add(time.Minute)
		must(t, b.FinishAttempt(ctx(t), &sent))
		retry := got[1]
		retry.Attempts, retry.NextAt, retry.LastError = 1, t0.Add(10*time.Minute), "the receiver answered 503"
		must(t, b.FinishAttempt(ctx(t), &retry))
		wantErr(t, b.FinishAttempt(ctx(t), &notify.Delivery{ID: 9999, State: notify.DeliverySent}), store.ErrNotFound)
		ds, err := b.Deliveries(ctx(t), 10)
		must(t, err)
		byID := map[int64]notify.Delivery{}
		for _, d := range ds {
			byID[d.ID] = d
		}
		if d := byID[sent.ID]; d.State != notify.DeliverySent || d.Attempts != 1 || !d.DoneAt.Equal(sent.DoneAt) {
			t.Errorf("sent delivery %+v", d)
		}
		if d := byID[retry.ID]; d.State != notify.DeliveryPending || d.LastError == "" || !d.NextAt.Equal(retry.NextAt) {
			t.Errorf("retried delivery %+v", d)
		}
		// At +9 min only the third (its lease from +2 s long over) is due:
		// the retry waits for +10 min and the sent one is done.
		c, err := b.ClaimDeliveries(ctx(t), t0.Add(9*time.Minute), time.Minute, 10)
		must(t, err)
		if len(c) != 1 || c[0].ID != batch.Deliveries[2].ID {
			t.Errorf("claim at +9 min = %+v, want only delivery %d", c, batch.Deliveries[2].ID)
		}
		n, err := b.PruneDeliveries(ctx(t), t0.Add(2*time.Minute))
		must(t, err)
		if n != 1 {
			t.Errorf("pruned %d, want 1 (only the sent one is done)", n)
		}
	}},
}
