package throttle

import "testing"

func TestSignal(t *testing.T) {
	var nilSig *Signal
	if nilSig.On() {
		t.Error("a nil signal is on")
	}
	var s Signal
	if s.On() || !s.Set(true) || !s.On() || s.Set(true) || !s.Set(false) || s.On() || s.Set(false) {
		t.Error("Set/On do not follow the sequence off, on, on (no change), off, off (no change)")
	}
}
