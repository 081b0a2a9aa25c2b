package agent

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"time"

	"github.com/vigil-edr/vigil/internal/agent/action"
	"github.com/vigil-edr/vigil/internal/command"
	"github.com/vigil-edr/vigil/internal/transport/client"
)

// ActionClient is what the action loop needs from the transport client.
type ActionClient interface {
	PollActions(ctx context.Context, wait time.Duration) ([]client.Delivery, error)
	ReportResult(ctx context.Context, result []byte) error
	Identity() *client.Identity
}

// RunActions long-polls the server for response commands, verifies each
// (action.Verifier) and runs the ones that pass (action.Executor), one at a
// time, reporting every result and refusal. It returns when ctx ends.
func RunActions(ctx context.Context, c ActionClient, v *action.Verifier, e *action.Executor, log *slog.Logger) {
	backoff := time.Second
	for ctx.Err() == nil {
		ds, err := c.PollActions(ctx, 30*time.Second)
		if err != nil {
			if ctx.Err() == nil {
				log.Debug("action poll", "err", err)
				sleep(ctx, backoff)
				backoff = min(2*backoff, time.Minute)
			}
			continue
		}
		backoff = time.Second
		for _, d := range ds {
			// A renewal may have taught the client the key.
			if k := c.Identity().ActionKey; len(k) != 0 {
				v.Key = k
			}
			res := handle(ctx, d, v, e, log)
			b, _ := json.Marshal(res)
			report(ctx, c, b, log)
		}
	}
}

func handle(ctx context.Context, d client.Delivery, v *action.Verifier, e *action.Executor, log *slog.Logger) command.Result {
	cmd, err := v.Check(d.ID, d.Signed)
	if err != nil {
		var r *action.Refusal
		if errors.As(err, &r) {
			log.Warn("response action refused", "id", d.ID, "reason", r.Reason, "err", r.Msg)
			return command.Result{ID: d.ID, Status: command.Refused, Reason: r.Reason, Error: r.Msg}
		}
		log.Error("response action not checked", "id", d.ID, "err", err)
		return command.Result{ID: d.ID, Status: command.Failed, Error: err.Error()}
	}
	log.Info("response action", "id", cmd.ID, "action", cmd.Action, "args", cmd.Args, "requested_by", cmd.RequestedBy, "approved_by", cmd.ApprovedBy)
	res := e.Run(ctx, cmd)
	log.Info("response action done", "id", cmd.ID, "status", res.Status, "err", res.Error)
	return res
}

// report sends a result, retrying for a while: the action has run, and the
// server must learn of it.
func report(ctx context.Context, c ActionClient, b []byte, log *slog.Logger) {
	wait := time.Second
	for try := 0; try < 8 && ctx.Err() == nil; try++ {
		err := c.ReportResult(ctx, b)
		if err == nil {
			return
		}
		var ae *client.APIError
		if errors.As(err, &ae) && ae.Status < 500 && ae.Status != 429 {
			log.Warn("action result refused by the server", "err", err)
			return
		}
		sleep(ctx, wait)
		wait = min(2*wait, time.Minute)
	}
}

// serverResolver resolves the server URL's host for isolation.
func serverResolver(server string) func(ctx context.Context) ([]netip.Addr, error) {
	return func(ctx context.Context) ([]netip.Addr, error) {
		u, err := url.Parse(server)
		if err != nil {
			return nil, err
		}
		host := u.Hostname()
		if a, err := netip.ParseAddr(host); err == nil {
			return []netip.Addr{a.Unmap()}, nil
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var r net.Resolver
		addrs, err := r.LookupNetIP(rctx, "ip", host)
		for i := range addrs {
			addrs[i] = addrs[i].Unmap()
		}
		return addrs, err
	}
}
