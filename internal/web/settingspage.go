package web

import (
	"net/http"
	"time"

	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/notify"
	"github.com/vigil-edr/vigil/internal/transport"
)

type settingsData struct {
	Users    []userRow
	Tokens   []authz.Token
	Enroll   []transport.EnrollToken
	Channels []channelJSON
	Routes   []notify.Route
	Roles    []string
	Kinds    []string
	// Missing names the parts this server does not offer.
	Missing []string
}

// userRow is what the page shows of a user (never the password hash or
// the TOTP secret).
type userRow struct {
	Name      string
	Role      authz.Role
	TOTP      bool // a second factor is enrolled
	Locked    bool
	Failed    int
	CreatedAt time.Time
}

// settingsPage shows users, API tokens, enrolment tokens, notification
// channels and routes; the forms change them through the API (forms.js),
// which checks each one's own permission.
func (s *Server) settingsPage(w http.ResponseWriter, r *http.Request) (any, error) {
	ctx := r.Context()
	d := settingsData{Roles: []string{"viewer", "analyst", "admin"},
		Kinds: []string{"webhook", "slack", "teams", "mattermost", "email"}}
	now := s.now()
	if s.opts.Users != nil {
		us, err := s.opts.Users.ListUsers(ctx)
		if err != nil {
			return nil, err
		}
		for _, u := range us {
			d.Users = append(d.Users, userRow{Name: u.Name, Role: u.Role, TOTP: len(u.TOTPSecret) > 0,
				Locked: now.Before(u.LockedUntil), Failed: u.Failed, CreatedAt: u.CreatedAt})
		}
	}
	ts, err := s.opts.Tokens.ListTokens(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range ts {
		t.Hash = nil
		d.Tokens = append(d.Tokens, t)
	}
	if s.opts.Enrollment != nil {
		if d.Enroll, err = s.opts.Enrollment.ListEnrollTokens(ctx); err != nil {
			return nil, err
		}
		for i := range d.Enroll {
			d.Enroll[i].SecretHash = nil
		}
	} else {
		d.Missing = append(d.Missing, "enrolment tokens")
	}
	if s.opts.Notify != nil {
		cs, err := s.opts.Notify.ListChannels(ctx)
		if err != nil {
			return nil, err
		}
		for i := range cs {
			d.Channels = append(d.Channels, toChannelJSON(&cs[i]))
		}
		if d.Routes, err = s.opts.Notify.ListRoutes(ctx); err != nil {
			return nil, err
		}
	} else {
		d.Missing = append(d.Missing, "notifications")
	}
	return d, nil
}
