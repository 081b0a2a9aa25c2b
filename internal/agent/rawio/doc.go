// Package rawio reads /proc files with raw system calls, for the agent's
// hot paths (an exec event, a file change).
//
// These are calls the kernel serves from memory (procfs), never waiting on
// I/O. Made the normal way,
// a call tells the Go scheduler it may block; when it lasts a sysmon tick
// (20 µs) while the other P is busy, the runtime hands its P to another
// thread and resets sysmon to 20 µs naps: dozens of context switches for
// one open of /proc/PID/stat on a paravirtualised machine. Raw calls skip
// that bookkeeping. Do not use them for anything that can wait: files on
// disk, network or FUSE file systems, pipes.
package rawio
