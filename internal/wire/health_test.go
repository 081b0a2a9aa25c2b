package wire

import (
	"os"
	"strings"
	"testing"
)

func TestDecodeHealth(t *testing.T) {
	good, err := os.ReadFile("testdata/health/good.json")
	if err != nil {
		t.Fatal(err)
	}
	h, ok, err := DecodeHealth(good)
	if err != nil || !ok {
		t.Fatalf("good.json: ok=%v err=%v", ok, err)
	}
	if len(h.Sensors) != 2 || h.Sensors[1].State != SensorDegraded || !h.Sensors[1].Fallback || h.Spool.Records != 12 || h.CPUPercent != 1.5 {
		t.Errorf("good.json decoded as %+v", h)
	}
	for _, empty := range []string{"", "{}", " {} \n"} {
		if _, ok, err := DecodeHealth([]byte(empty)); ok || err != nil {
			t.Errorf("%q: ok=%v err=%v, want no health and no error", empty, ok, err)
		}
	}
	sensor := func(s string) string {
		return `{"time":"2026-12-02T14:00:00Z","sensors":[` + s + `]}`
	}
	bad := []struct{ body, want string }{
		{`{"time":"2026-12-02T14:00:00Z"`, "unexpected end"},
		{`{"cpu_percent":1}`, "time missing"},
		{`{"time":"2026-12-02T14:00:00Z","cpu_percent":-1}`, "cpu_percent"},
		{`{"time":"2026-12-02T14:00:00Z","rss_bytes":-1}`, "negative"},
		{`{"time":"2026-12-02T14:00:00Z","version":"a\u0001b"}`, "version: control character"},
		{"{\"time\":\"2026-12-02T14:00:00Z\",\"version\":\"\xff\"}", "invalid UTF-8"},
		{sensor(`{"state":"running"}`), "sensors[0]: name missing"},
		{sensor(`{"name":"p","state":"sleeping"}`), `sensors[0].state "sleeping"`},
		{sensor(`{"name":"p","state":"running","detail":"` + strings.Repeat("x", 3000) + `"}`), "sensors[0].detail: 3000 bytes"},
		{sensor(strings.Repeat(`{"name":"p","state":"running"},`, 33) + `{"name":"p","state":"running"}`), "34 sensors"},
		{`{"time":"2026-12-02T14:00:00Z","throttle":"` + strings.Repeat("x", MaxHealthBytes) + `"}`, "bytes, at most 65536"},
	}
	for _, c := range bad {
		_, ok, err := DecodeHealth([]byte(c.body))
		if ok || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%.60q: ok=%v err=%v, want an error with %q", c.body, ok, err, c.want)
		}
	}
}
