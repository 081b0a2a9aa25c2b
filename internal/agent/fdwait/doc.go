// Package fdwait waits for a file descriptor to become readable outside the
// Go runtime's poller.
//
// A descriptor registered with the poller (os.NewFile on a non-blocking
// descriptor) wakes the runtime's netpoller thread at every arrival, edge
// triggered, whether or not a goroutine is reading it: a sensor that reads a
// busy audit socket or fanotify queue in rounds 100 ms apart still paid a
// context switch per arrival (about a hundred a second at 100 execs a second,
// the largest single cost of the agent on a paravirtualised machine). A
// descriptor kept out of the poller costs nothing between rounds: the sensor
// reads it without waiting while records keep coming, and blocks in poll(2)
// through a Waiter only when a read found nothing.
package fdwait
