package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// Health is the body of an agent's heartbeat (POST /agent/v1/heartbeat): the
// agent's own state, sent every HeartbeatEvery so the server can show it
// online and healthy. docs/wire.md specifies it; DecodeHealth checks it.
type Health struct {
	// Time is the agent's clock when it took the sample.
	Time time.Time `json:"time"`
	// Version is the agent's version.
	Version string `json:"version,omitempty"`
	// CPUPercent is the agent's CPU time over the last sample window, in
	// percent of one core; RSSBytes its resident memory.
	CPUPercent float64 `json:"cpu_percent"`
	RSSBytes   int64   `json:"rss_bytes"`
	// Throttled is true while the agent is over its CPU budget and its
	// sensors are backed off; Throttle says what is deferred.
	Throttled bool   `json:"throttled"`
	Throttle  string `json:"throttle,omitempty"`
	// Restarts counts the agent's own restarts (over its memory limit) in
	// the last hour.
	Restarts int `json:"restarts"`
	// Spool is the on-disk buffer: records and bytes not yet acknowledged
	// by the server, and records dropped by its bound (the gap counter).
	Spool SpoolHealth `json:"spool"`
	// EventsRecorded and EventsSent count events since the agent started.
	EventsRecorded uint64 `json:"events_recorded"`
	EventsSent     uint64 `json:"events_sent"`
	// Sensors has one entry per configured sensor.
	Sensors []SensorHealth `json:"sensors"`
}

// SpoolHealth is the spool part of Health.
type SpoolHealth struct {
	Records uint64 `json:"records"`
	Bytes   int64  `json:"bytes"`
	Dropped uint64 `json:"dropped"`
}

// SensorHealth is one sensor's state.
type SensorHealth struct {
	Name string `json:"name"`
	// Mechanism is what the sensor uses ("audit-netlink unicast",
	// "fanotify", "journal" …), "" before it has chosen.
	Mechanism string `json:"mechanism"`
	// Fallback is true when Mechanism is a weaker substitute for the
	// preferred one (polling instead of kernel events).
	Fallback bool `json:"fallback"`
	// State is one of the SensorX constants.
	State string `json:"state"`
	// Detail is the sensor's own status line (counters, why degraded).
	Detail string `json:"detail,omitempty"`
}

// Sensor states.
const (
	SensorStarting    = "starting"    // not yet probed
	SensorRunning     = "running"     // working
	SensorDegraded    = "degraded"    // working with a problem (see Detail)
	SensorUnavailable = "unavailable" // the host offers no mechanism
	SensorStopped     = "stopped"     // stopped with an error
)

// Limits of a Health body.
const (
	MaxHealthBytes   = 64 << 10
	MaxHealthSensors = 32
	maxHealthName    = 64
	maxHealthText    = 2048
)

// ErrBadHealth is wrapped by every error of DecodeHealth.
var ErrBadHealth = errors.New("bad heartbeat health")

// DecodeHealth parses and checks a heartbeat body. An empty body or "{}"
// (agents before health reporting) is a zero Health and ok=false. Unknown
// keys are ignored, so newer agents can add some.
func DecodeHealth(b []byte) (h Health, ok bool, err error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "{}" {
		return Health{}, false, nil
	}
	if len(b) > MaxHealthBytes {
		return Health{}, false, fmt.Errorf("%w: %d bytes, at most %d", ErrBadHealth, len(b), MaxHealthBytes)
	}
	if !utf8.Valid(b) {
		return Health{}, false, fmt.Errorf("%w: invalid UTF-8", ErrBadHealth)
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return Health{}, false, fmt.Errorf("%w: %v", ErrBadHealth, err)
	}
	if err := h.check(); err != nil {
		return Health{}, false, fmt.Errorf("%w: %v", ErrBadHealth, err)
	}
	return h, true, nil
}

func (h *Health) check() error {
	if h.Time.IsZero() {
		return errors.New("time missing")
	}
	if math.IsNaN(h.CPUPercent) || h.CPUPercent < 0 || h.CPUPercent > 1e5 {
		return fmt.Errorf("cpu_percent %v out of range", h.CPUPercent)
	}
	if h.RSSBytes < 0 || h.Spool.Bytes < 0 || h.Restarts < 0 {
		return errors.New("negative rss_bytes, spool.bytes or restarts")
	}
	if err := text("version", h.Version, maxHealthName); err != nil {
		return err
	}
	if err := text("throttle", h.Throttle, maxHealthText); err != nil {
		return err
	}
	if len(h.Sensors) > MaxHealthSensors {
		return fmt.Errorf("%d sensors, at most %d", len(h.Sensors), MaxHealthSensors)
	}
	for i, s := range h.Sensors {
		if s.Name == "" {
			return fmt.Errorf("sensors[%d]: name missing", i)
		}
		if err := text(fmt.Sprintf("sensors[%d].name", i), s.Name, maxHealthName); err != nil {
			return err
		}
		if err := text(fmt.Sprintf("sensors[%d].mechanism", i), s.Mechanism, maxHealthName); err != nil {
			return err
		}
		if err := text(fmt.Sprintf("sensors[%d].detail", i), s.Detail, maxHealthText); err != nil {
			return err
		}
		switch s.State {
		case SensorStarting, SensorRunning, SensorDegraded, SensorUnavailable, SensorStopped:
		default:
			return fmt.Errorf("sensors[%d].state %q is not a sensor state", i, s.State)
		}
	}
	return nil
}

// text checks a string field: at most max bytes, no control characters
// other than tab.
func text(name, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%s: %d bytes, at most %d", name, len(s), max)
	}
	for i, r := range s {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return fmt.Errorf("%s: control character at byte %d", name, i)
		}
	}
	return nil
}
