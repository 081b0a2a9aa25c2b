//go:build !linux

package network

import (
	"context"
	"fmt"
	"runtime"

	"github.com/vigil-edr/vigil/internal/event"
)

// Run returns an error: the sensor is not supported yet on this system.
func (s *Sensor) Run(ctx context.Context, out func(*event.Event)) error {
	err := fmt.Errorf("%w: not supported yet on %s", ErrUnavailable, runtime.GOOS)
	s.setState(MechUnavailable, "", err)
	return err
}

// Listening is not supported yet on this system.
func Listening() ([]Listener, error) {
	return nil, fmt.Errorf("%w: not supported yet on %s", ErrUnavailable, runtime.GOOS)
}
