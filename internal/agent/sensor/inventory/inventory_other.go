//go:build !linux

package inventory

import (
	"context"
	"fmt"
	"runtime"

	"github.com/vigil-edr/vigil/internal/event"
)

// Run returns an error: the sensor is not supported yet on this system.
func (s *Sensor) Run(ctx context.Context, out func(*event.Event)) error {
	err := fmt.Errorf("%w yet on %s", ErrUnsupported, runtime.GOOS)
	s.update(func(st *Status) { st.Err = err })
	return err
}
