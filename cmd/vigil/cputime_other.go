//go:build !unix

package main

import "time"

// processCPU is not measured here: bench ingest reports cpu_us_per_event 0.
func processCPU() time.Duration { return 0 }
