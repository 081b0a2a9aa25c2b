package notify

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-edr/vigil/internal/alert"
)

func TestRouteMatches(t *testing.T) {
	a := &alert.Alert{Level: "high", Host: "WEB-01.corp", Tags: []string{"attack.execution", "attack.t1059.004"}}
	for _, c := range []struct {
		name string
		r    Route
		want bool
	}{
		{"empty route matches all", Route{}, true},
		{"level at the minimum", Route{MinLevel: "high"}, true},
		{"level below the minimum", Route{MinLevel: "critical"}, false},
		{"host pattern, case-insensitive", Route{Hosts: []string{"web-*"}}, true},
		{"host group without the host", Route{Hosts: []string{"db-*", "mail?"}}, false},
		{"tag prefix", Route{Tags: []string{"attack.t1059*"}}, true},
		{"tag exact miss", Route{Tags: []string{"attack.t1059"}}, false},
		{"all filters", Route{MinLevel: "medium", Hosts: []string{"*.corp"}, Tags: []string{"attack.execution"}}, true},
		{"one filter fails", Route{MinLevel: "medium", Hosts: []string{"*.corp"}, Tags: []string{"attack.persistence"}}, false},
	} {
		if got := c.r.Matches(a); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if (&Route{MinLevel: "low"}).Matches(&alert.Alert{Level: "weird"}) {
		t.Error("an unknown level ranked above informational")
	}
}

func TestBackoff(t *testing.T) {
	for _, jitter := range []float64{0, 0.999} {
		n, err := New(Options{Store: nilStore{}, Backoff: 10 * time.Second, MaxBackoff: time.Hour, Jitter: func() float64 { return jitter }})
		if err != nil {
			t.Fatal(err)
		}
		for attempts, full := range map[int]time.Duration{1: 10 * time.Second, 2: 20 * time.Second, 4: 80 * time.Second,
			9: 2560 * time.Second, 10: time.Hour, 100: time.Hour} {
			d := n.backoff(attempts)
			if d < full/2 || d > full {
				t.Errorf("jitter %v, attempt %d: %v, want within [%v, %v]", jitter, attempts, d, full/2, full)
			}
			if jitter == 0 && d != full/2 {
				t.Errorf("attempt %d: %v, want the lower bound %v", attempts, d, full/2)
			}
		}
	}
}

// nilStore satisfies Store for tests that never touch storage.
type nilStore struct{ Store }

func TestOptionsRejected(t *testing.T) {
	for _, c := range []struct {
		opts Options
		want string
	}{
		{Options{}, "Store is required"},
		{Options{Store: nilStore{}, Timeout: -time.Second}, "Timeout"},
		{Options{Store: nilStore{}, Timeout: time.Minute, Lease: time.Minute}, "Lease"},
		{Options{Store: nilStore{}, Backoff: time.Hour, MaxBackoff: time.Minute}, "MaxBackoff"},
		{Options{Store: nilStore{}, Allow: []string{"10.0.0.0/40"}}, "allow-list"},
		{Options{Store: nilStore{}, HeloName: "bad name\r\n"}, "HeloName"},
	} {
		_, err := New(c.opts)
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want a ConfigError about %s", c.opts, err, c.want)
		}
	}
}

func TestChannelValidation(t *testing.T) {
	n, err := New(Options{Store: nilStore{}, Allow: []string{"10.9.0.0/16", "chat.lan"}})
	if err != nil {
		t.Fatal(err)
	}
	ok := []Channel{
		{Name: "a", Kind: KindWebhook, URL: "https://hooks.example.org/x", Secret: "0123456789abcdef"},
		{Name: "b", Kind: KindSlack, URL: "https://hooks.slack.com/services/T/B/x"},
		{Name: "c", Kind: KindMattermost, URL: "http://chat.lan:8065/hooks/x"}, // allow-listed name: http accepted
		{Name: "d", Kind: KindTeams, URL: "http://10.9.1.2/webhook"},           // allow-listed range
		{Name: "e", Kind: KindEmail, SMTPAddr: "mail.example.org:587", From: "v@example.org", To: []string{"Soc <soc@example.org>"}},
		{Name: "f", Kind: KindEmail, SMTPAddr: "10.9.0.25:25", SMTPTLS: TLSNone, From: "v@example.org", To: []string{"soc@example.org"}},
	}
	for _, c := range ok {
		if err := n.validateChannel(&c); err != nil {
			t.Errorf("%s: %v", c.Name, err)
		}
	}
	bad := []struct {
		c    Channel
		want string
	}{
		{Channel{Name: "x", Kind: KindWebhook, URL: "https://h.example.org", Secret: "short"}, "signing secret"},
		{Channel{Name: "x", Kind: KindSlack, URL: "http://hooks.slack.com/x"}, "https"},
		{Channel{Name: "x", Kind: KindSlack, URL: "ftp://hooks.slack.com/x"}, "https"},
		{Channel{Name: "x", Kind: KindSlack, URL: "https://user:pw@hooks.slack.com/x"}, "user name"},
		{Channel{Name: "x", Kind: KindSlack, URL: "https://10.0.0.1/x"}, "private"},
		{Channel{Name: "x", Kind: KindSlack, URL: "https://[::ffff:127.0.0.1]/x"}, "loopback"},
		{Channel{Name: "x", Kind: KindSlack, URL: "https://100.100.100.200/x"}, "carrier-grade"},
		{Channel{Name: "x", Kind: KindSlack, URL: "https://hooks.slack.com/x", Secret: "0123456789abcdef"}, "secret only"},
		{Channel{Name: "x", Kind: KindSlack, URL: "https://hooks.slack.com/x", SMTPAddr: "a:25"}, "smtp settings"},
		{Channel{Name: "x\x00y", Kind: KindSlack, URL: "https://hooks.slack.com/x"}, "control"},
		{Channel{Name: "x", Kind: "sms"}, "kind"},
		{Channel{Name: "x", Kind: KindEmail, SMTPAddr: "mail.example.org", From: "v@example.org", To: []string{"s@example.org"}}, "host:port"},
		{Channel{Name: "x", Kind: KindEmail, SMTPAddr: "169.254.169.254:25", From: "v@example.org", To: []string{"s@example.org"}}, "link-local"},
		{Channel{Name: "x", Kind: KindEmail, SMTPAddr: "m.example.org:25", SMTPTLS: "ssl", From: "v@example.org", To: []string{"s@example.org"}}, "smtp_tls"},
		{Channel{Name: "x", Kind: KindEmail, SMTPAddr: "m.example.org:25", SMTPTLS: TLSNone, Username: "u", Password: "p", From: "v@example.org", To: []string{"s@example.org"}}, "only sent over TLS"},
		{Channel{Name: "x", Kind: KindEmail, SMTPAddr: "m.example.org:25", Username: "u", From: "v@example.org", To: []string{"s@example.org"}}, "go together"},
		{Channel{Name: "x", Kind: KindEmail, SMTPAddr: "m.example.org:25", From: "not an address", To: []string{"s@example.org"}}, "from address"},
		{Channel{Name: "x", Kind: KindEmail, SMTPAddr: "m.example.org:25", From: "v@example.org"}, "to needs"},
		{Channel{Name: "x", Kind: KindEmail, SMTPAddr: "m.example.org:25", From: "v@example.org", To: []string{"a@example.org\nBcc: b@example.org"}}, "control"},
	}
	for _, b := range bad {
		err := n.validateChannel(&b.c)
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%+v: %v, want a ConfigError about %q", b.c, err, b.want)
		}
	}
}

func TestRouteValidation(t *testing.T) {
	for _, c := range []struct {
		r    Route
		want string
	}{
		{Route{Channels: []int64{1}}, "name is required"},
		{Route{Name: "r"}, "channels needs"},
		{Route{Name: "r", Channels: []int64{0}}, "positive"},
		{Route{Name: "r", Channels: []int64{1}, MinLevel: "urgent"}, "min_level"},
		{Route{Name: "r", Channels: []int64{1}, Tags: []string{"["}}, "malformed"},
		{Route{Name: "r", Channels: []int64{1}, EscalateAfter: time.Minute}, "go together"},
		{Route{Name: "r", Channels: []int64{1}, EscalateTo: []int64{2}}, "go together"},
		{Route{Name: "r", Channels: []int64{1}, EscalateAfter: 8 * 24 * time.Hour, EscalateTo: []int64{2}}, "escalate_after"},
	} {
		if err := validateRoute(&c.r); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.r, err, c.want)
		}
	}
	r := Route{Name: " r ", Channels: []int64{3, 3, 4}, MinLevel: "HIGH"}
	if err := validateRoute(&r); err != nil || r.Name != "r" || len(r.Channels) != 2 || r.MinLevel != "high" {
		t.Errorf("normalised route %+v, %v", r, err)
	}
}
