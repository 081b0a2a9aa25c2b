package notify

import (
	"context"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vigil-edr/vigil/internal/alert"
)

// Limits on configuration.
const (
	maxConfigName  = 128
	maxURLLen      = 2048
	maxSecretLen   = 1024
	minSecretLen   = 16
	maxRecipients  = 50
	maxPatterns    = 64
	maxRouteChans  = 32
	maxEscalation  = 7 * 24 * time.Hour
	maxPatternLen  = 256
	maxAddressLen  = 320
	maxUsernameLen = 256
)

// Levels are the Sigma levels, lowest first.
var Levels = []string{"informational", "low", "medium", "high", "critical"}

func levelRank(l string) int {
	for i, x := range Levels {
		if strings.EqualFold(x, l) {
			return i
		}
	}
	return 0 // unknown levels rank with informational, as in the alert store
}

func invalid(format string, args ...any) error {
	return &ConfigError{Msg: fmt.Sprintf(format, args...)}
}

// checkText rejects empty (when required), over-long, invalid UTF-8 and
// control characters.
func checkText(what, s string, max int, required bool) error {
	switch {
	case required && strings.TrimSpace(s) == "":
		return invalid("%s is required", what)
	case len(s) > max:
		return invalid("%s is longer than %d bytes", what, max)
	case !utf8.ValidString(s):
		return invalid("%s is not valid UTF-8", what)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return invalid("%s contains control characters", what)
		}
	}
	return nil
}

// allowsByConfig reports whether a host, as written in a URL, is opened by
// the allow-list (a listed name, or an address inside a listed range).
func (p *Policy) allowsByConfig(host string) bool {
	if p.allowHosts[strings.ToLower(strings.TrimSuffix(host, "."))] {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, a := range p.allowNets {
		if a.Contains(ip) {
			return true
		}
	}
	return false
}

// checkURL accepts an https URL, or an http URL whose host the allow-list
// opens (an on-premise server). The address is checked again at every
// dial; this only catches mistakes early.
func (n *Notifier) checkURL(raw string) error {
	if err := checkText("url", raw, maxURLLen, true); err != nil {
		return err
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return invalid("url must be an absolute http(s) URL")
	}
	if u.User != nil {
		return invalid("url must not contain a user name or password")
	}
	if u.Fragment != "" {
		return invalid("url must not contain a fragment")
	}
	host := u.Hostname()
	switch u.Scheme {
	case "https":
	case "http":
		if !n.policy.allowsByConfig(host) {
			return invalid("url must use https (plain http is only accepted for allow-listed on-premise hosts)")
		}
	default:
		return invalid("url must use https")
	}
	if p := u.Port(); p != "" && (len(p) > 5 || strings.Trim(p, "0123456789") != "") {
		return invalid("url has an invalid port")
	}
	return n.checkHost(host)
}

// checkHost rejects a literal address the policy blocks (names are
// checked when dialled, since what they resolve to may change).
func (n *Notifier) checkHost(host string) error {
	if ip, err := netip.ParseAddr(host); err == nil {
		if err := n.policy.Check(ip); err != nil {
			return invalid("%v", err)
		}
		return nil
	}
	if !validHostname(host) {
		return invalid("%q is not a valid host name", clipRunes(host, 64))
	}
	return nil
}

func clipRunes(s string, n int) string {
	r := []rune(strings.ToValidUTF8(s, "\uFFFD"))
	if len(r) > n {
		return string(r[:n]) + "…"
	}
	return string(r)
}

// validateChannel normalises c and checks it completely.
func (n *Notifier) validateChannel(c *Channel) error {
	c.Name = strings.TrimSpace(c.Name)
	if err := checkText("name", c.Name, maxConfigName, true); err != nil {
		return err
	}
	if !slices.Contains(Kinds, c.Kind) {
		return invalid("kind must be one of webhook, email, slack, teams, mattermost")
	}
	if c.Kind == KindEmail {
		return n.validateEmail(c)
	}
	if c.SMTPAddr != "" || c.Username != "" || c.Password != "" || c.From != "" || len(c.To) > 0 || c.SMTPTLS != "" {
		return invalid("smtp settings only apply to email channels")
	}
	if err := n.checkURL(c.URL); err != nil {
		return err
	}
	if c.Kind == KindWebhook {
		if len(c.Secret) < minSecretLen || len(c.Secret) > maxSecretLen {
			return invalid("a webhook needs a signing secret of %d to %d bytes", minSecretLen, maxSecretLen)
		}
	} else if c.Secret != "" {
		return invalid("secret only applies to webhook channels (chat webhooks are authenticated by their URL)")
	}
	return nil
}

func (n *Notifier) validateEmail(c *Channel) error {
	if c.URL != "" || c.Secret != "" {
		return invalid("url and secret do not apply to email channels")
	}
	host, port, err := net.SplitHostPort(c.SMTPAddr)
	if err != nil || host == "" || port == "" || strings.Trim(port, "0123456789") != "" || len(port) > 5 {
		return invalid("smtp_addr must be host:port")
	}
	if err := n.checkHost(host); err != nil {
		return err
	}
	if c.SMTPTLS == "" {
		c.SMTPTLS = TLSStartTLS
	}
	switch c.SMTPTLS {
	case TLSStartTLS, TLSImplicit:
	case TLSNone:
		if c.Username != "" || c.Password != "" {
			return invalid("smtp_tls none cannot be combined with a user name or password: credentials are only sent over TLS")
		}
	default:
		return invalid("smtp_tls must be starttls, tls or none")
	}
	if err := checkText("username", c.Username, maxUsernameLen, false); err != nil {
		return err
	}
	if len(c.Password) > maxSecretLen {
		return invalid("password is longer than %d bytes", maxSecretLen)
	}
	if (c.Username == "") != (c.Password == "") {
		return invalid("username and password go together")
	}
	if err := checkAddress("from", c.From); err != nil {
		return err
	}
	if len(c.To) == 0 || len(c.To) > maxRecipients {
		return invalid("to needs 1 to %d addresses", maxRecipients)
	}
	for _, a := range c.To {
		if err := checkAddress("to", a); err != nil {
			return err
		}
	}
	return nil
}

// checkAddress accepts one bare RFC 5322 address (user@example.org, or
// "Name <user@example.org>"); net/mail rejects CR and LF, so no header can
// be injected through it.
func checkAddress(what, s string) error {
	if err := checkText(what, s, maxAddressLen, true); err != nil {
		return err
	}
	a, err := mail.ParseAddress(s)
	if err != nil || !strings.Contains(a.Address, "@") {
		return invalid("%s address %q is not a valid email address", what, clipRunes(s, 64))
	}
	return nil
}

// validateRoute normalises r and checks it; channel existence is checked
// by the store.
func validateRoute(r *Route) error {
	r.Name = strings.TrimSpace(r.Name)
	if err := checkText("name", r.Name, maxConfigName, true); err != nil {
		return err
	}
	if r.MinLevel != "" {
		r.MinLevel = strings.ToLower(r.MinLevel)
		if !slices.Contains(Levels, r.MinLevel) {
			return invalid("min_level must be one of %s", strings.Join(Levels, ", "))
		}
	}
	for _, list := range []struct {
		what string
		ps   []string
	}{{"tags", r.Tags}, {"hosts", r.Hosts}} {
		if len(list.ps) > maxPatterns {
			return invalid("%s has more than %d patterns", list.what, maxPatterns)
		}
		for _, p := range list.ps {
			if err := checkText(list.what+" pattern", p, maxPatternLen, true); err != nil {
				return err
			}
			if _, err := path.Match(p, ""); err != nil {
				return invalid("%s pattern %q is malformed", list.what, clipRunes(p, 64))
			}
		}
	}
	if len(r.Channels) == 0 || len(r.Channels) > maxRouteChans {
		return invalid("channels needs 1 to %d channel ids", maxRouteChans)
	}
	if len(r.EscalateTo) > maxRouteChans {
		return invalid("escalate_to has more than %d channel ids", maxRouteChans)
	}
	for _, id := range append(slices.Clone(r.Channels), r.EscalateTo...) {
		if id <= 0 {
			return invalid("channel ids are positive integers")
		}
	}
	r.Channels, r.EscalateTo = dedupe(r.Channels), dedupe(r.EscalateTo)
	switch {
	case r.EscalateAfter < 0 || r.EscalateAfter > maxEscalation:
		return invalid("escalate_after must be between 0 and %v", maxEscalation)
	case (r.EscalateAfter > 0) != (len(r.EscalateTo) > 0):
		return invalid("escalate_after and escalate_to go together")
	}
	return nil
}

func dedupe(ids []int64) []int64 {
	var out []int64
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// Matches reports whether the route's filters select alert a (Enabled is
// not considered).
func (r *Route) Matches(a *alert.Alert) bool {
	if r.MinLevel != "" && levelRank(a.Level) < levelRank(r.MinLevel) {
		return false
	}
	if len(r.Hosts) > 0 && !anyMatch(r.Hosts, a.Host) {
		return false
	}
	if len(r.Tags) > 0 {
		hit := false
		for _, t := range a.Tags {
			if anyMatch(r.Tags, t) {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

func anyMatch(patterns []string, s string) bool {
	s = strings.ToLower(s)
	for _, p := range patterns {
		if ok, _ := path.Match(strings.ToLower(p), s); ok {
			return true
		}
	}
	return false
}

// RedactedURL is the channel URL as the API shows it: scheme, host and (for
// generic webhooks) path; chat webhook URLs carry their token in the path,
// and any query string may hold one too.
func (c *Channel) RedactedURL() string {
	u, err := url.Parse(c.URL)
	if err != nil || c.URL == "" {
		return ""
	}
	out := u.Scheme + "://" + u.Host
	if c.Kind == KindWebhook {
		out += u.EscapedPath()
	} else if u.Path != "" && u.Path != "/" {
		out += "/…"
	}
	if u.RawQuery != "" {
		out += "?…"
	}
	return out
}

// ---- configuration API (validated wrappers around the store) ----

// ListChannels returns every channel, secrets included (callers showing
// them must not).
func (n *Notifier) ListChannels(ctx context.Context) ([]Channel, error) {
	return n.store.ListChannels(ctx)
}

// GetChannel returns one channel or store.ErrNotFound.
func (n *Notifier) GetChannel(ctx context.Context, id int64) (*Channel, error) {
	return n.store.GetChannel(ctx, id)
}

// CreateChannel validates and stores c, setting c.ID.
func (n *Notifier) CreateChannel(ctx context.Context, c *Channel) error {
	if err := n.validateChannel(c); err != nil {
		return err
	}
	return n.store.CreateChannel(ctx, c)
}

// UpdateChannel validates and replaces channel c.ID. Write-only values the
// caller cannot read back are kept when left empty: the secret, the SMTP
// password, and a chat webhook's URL (shown redacted), as long as the kind
// is unchanged.
func (n *Notifier) UpdateChannel(ctx context.Context, c *Channel) error {
	old, err := n.store.GetChannel(ctx, c.ID)
	if err != nil {
		return err
	}
	if old.Kind == c.Kind {
		if c.Secret == "" {
			c.Secret = old.Secret
		}
		if c.Password == "" && c.Username != "" && c.Username == old.Username && c.SMTPAddr == old.SMTPAddr {
			c.Password = old.Password
		}
		if c.URL == "" && c.Kind != KindEmail {
			c.URL = old.URL
		}
	}
	c.CreatedAt = old.CreatedAt
	if err := n.validateChannel(c); err != nil {
		return err
	}
	return n.store.UpdateChannel(ctx, c)
}

// DeleteChannel deletes a channel no route names (store.ErrConflict
// otherwise).
func (n *Notifier) DeleteChannel(ctx context.Context, id int64) error {
	return n.store.DeleteChannel(ctx, id)
}

// ListRoutes returns every route.
func (n *Notifier) ListRoutes(ctx context.Context) ([]Route, error) { return n.store.ListRoutes(ctx) }

// GetRoute returns one route or store.ErrNotFound.
func (n *Notifier) GetRoute(ctx context.Context, id int64) (*Route, error) {
	return n.store.GetRoute(ctx, id)
}

// CreateRoute validates and stores r, setting r.ID.
func (n *Notifier) CreateRoute(ctx context.Context, r *Route) error {
	if err := validateRoute(r); err != nil {
		return err
	}
	return n.store.CreateRoute(ctx, r)
}

// UpdateRoute validates and replaces route r.ID.
func (n *Notifier) UpdateRoute(ctx context.Context, r *Route) error {
	if err := validateRoute(r); err != nil {
		return err
	}
	return n.store.UpdateRoute(ctx, r)
}

// DeleteRoute deletes a route; its pending escalations are dropped.
func (n *Notifier) DeleteRoute(ctx context.Context, id int64) error {
	return n.store.DeleteRoute(ctx, id)
}

// Deliveries returns the newest deliveries first (at most limit), for
// status pages.
func (n *Notifier) Deliveries(ctx context.Context, limit int) ([]Delivery, error) {
	return n.store.Deliveries(ctx, limit)
}
