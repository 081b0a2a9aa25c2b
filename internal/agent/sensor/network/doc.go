// Package network is the agent's network sensor: it reports outbound
// connections and inbound accepts (TCP and UDP) with the process that made
// them, sockets that start listening, and a periodic report of every
// listening socket, as Sigma events (product "linux") that SigmaHQ's
// network_connection rules match unmodified.
//
// # Mechanism
//
// At start Run probes the kernel and Status says what it chose and why:
//
//   - "ebpf-tracepoints": eBPF programs (bpf/network.bpf.c, compiled with
//     CO-RE into the committed network_bpfel.o / network_bpfeb.o, loaded
//     with github.com/cilium/ebpf) on the syscall tracepoints of connect,
//     accept, accept4, sendto, sendmsg, recvfrom, recvmsg and listen, and on
//     sched:sched_process_exec. Only tracepoints are used: no kprobes,
//     fentry or LSM programs, which many kernels do not offer. The exit side
//     of each syscall finds the socket through the process's file table and
//     reads both ends from it; the exec tracepoint keeps each process's
//     exec'd path in a kernel map, and the command line is copied from the
//     process's memory during the syscall, so a process that connects and
//     exits at once is still named. Needs Linux 5.8 (ring buffer) with BTF
//     and root (CAP_BPF and CAP_PERFMON); the sensor mounts tracefs at
//     /sys/kernel/tracing when it is not mounted. Not seen: socket
//     operations submitted through io_uring, 32-bit compat syscalls, and
//     addresses passed to sendmmsg/recvmmsg (a connected socket's
//     connect is seen).
//   - "sock_diag-poll": the fallback when eBPF cannot be loaded (or
//     Options.DisableEBPF). Every Options.PollEvery (2 s) it dumps TCP and
//     connected UDP sockets over NETLINK_SOCK_DIAG and reports those that
//     are new, finding the process through /proc/<pid>/fd socket inodes.
//     Status.Detail says plainly what this misses: connections that open
//     and close between two polls, and the process of a connection whose
//     process has exited (counted in Status.Unattributed). A TCP socket on
//     a listening port is reported as accepted, any other as connected.
//     Unconnected UDP is not seen. Sockets that exist at start are not
//     reported as new.
//   - "unavailable": neither works; Run returns an error wrapping
//     ErrUnavailable.
//
// # Events
//
// Connections have category network_connection; listens and the
// listening report have category network_listen (so a rule for
// connections never matches a listening socket). Field names follow
// Sysmon event 3 and the Sigma taxonomy:
//
//	EventType          connect | accept | send | receive | listen | listening_socket
//	ProcessId          the process (thread-group id)
//	Image              its executable (/proc/<pid>/exe; else the path it
//	                   exec'd; else the kernel's 16-byte command name)
//	CommandLine        argv joined by spaces
//	User, UserId       the real uid's name (/etc/passwd) and number
//	ParentProcessId    the parent's pid; ParentImage when /proc has it
//	Protocol           tcp | udp | udplite (MPTCP is reported as tcp)
//	Initiated          "true" outbound (connect, send), "false" inbound
//	                   (accept, receive); absent for listens
//	SourceIp, SourcePort, SourceIsIpv6
//	DestinationIp, DestinationPort, DestinationIsIpv6
//	DestinationHostname  outbound only, when the address was resolved (below)
//	Repeats            UDP only: datagrams folded into this event (below)
//	ReportTime         listening_socket only: the report the entry belongs to
//
// Source is the end that initiated the connection: for outbound events
// the local end, for inbound events the peer, as Sysmon does. Listens and
// report entries have only Source (the local address). IPv4-mapped IPv6
// addresses are reported as IPv4 (SourceIsIpv6 "false"). An unconnected UDP
// socket bound to the wildcard reports SourceIp 0.0.0.0 (or ::).
// Values are valid UTF-8 (invalid bytes become U+FFFD).
//
// DestinationHostname (outbound events, eBPF only) is the name the
// destination address was last resolved from on this host: every UDP
// datagram received from port 53 by recvfrom or recvmsg (glibc's resolver,
// systemd-resolved's upstream queries, most stub resolvers) is copied (512
// bytes) to the sensor, which keeps the question's name for each A and
// AAAA answer for the answer's TTL, at least 2 minutes and at most a day
// (4,096 addresses). Not seen: DNS over TCP, TLS or HTTPS, and answers read
// with read(2) on a connected socket (Go's own resolver). An address shared
// by several names carries the one resolved last.
//
// The listening report is sent at start and every Options.ReportEvery (10
// minutes): one listening_socket event per TCP socket in LISTEN and per
// bound, unconnected UDP socket, with the process holding it. Listening
// returns the same list to callers (the inventory).
//
// # UDP dedupe rule
//
// UDP has no connection, so every datagram would be an event. The first
// datagram a process sends to (or receives from) a peer address and port
// is reported; later ones between the same process and peer in the same
// direction (inbound: also on the same local port) are only counted, in
// the kernel, until Options.UDPWindow (60 s) has passed since the last
// report; the next one after that is reported with the count in Repeats.
// UDP connect() calls fold the same way. TCP connects and accepts are
// never folded.
//
// # Bounds and drops
//
// The kernel programs write into one ring buffer (Options.RingBytes, 1 MiB,
// about 1,700 connection records; DNS answers are 520-byte records); a record that does not fit is dropped and counted
// per CPU, and the sum is Status.Dropped. The kernel maps are bounded and
// evict the least recently used entry: 8,192 syscalls in flight, 8,192
// exec paths, 16,384 UDP peers. The process cache (Options.ProcCache) is
// emptied when full.
//
// # Importers
//
// The agent (internal/agent, cmd/vigil-agent, `vigil up`) imports this
// package. It imports the standard library, internal/event, cilium/ebpf and
// golang.org/x/sys, and never a server package (deps_test.go).
//
// # Concurrency and ordering
//
// Run uses one goroutine: it reads the ring buffer, enriches, and calls out
// in the order the records were committed (per CPU close to syscall order;
// across CPUs within a few microseconds). The reader drains the ring
// without waiting every Options.FlushEvery (1 s), on a timer, and a tenth
// of that after a drain that found a quarter of the ring or more, so an
// event waits at most a second, a burst is taken ten times a second, and a
// quiet host costs one wake-up a second. out receives one
// reused *event.Event: it must copy what it keeps. Status and Listening are
// safe to call from any goroutine. A Sensor runs once at a time.
//
// # Regenerating the eBPF objects
//
// See gen.go: `go generate ./internal/agent/sensor/network/` with clang,
// llvm and libbpf-dev installed. The build needs only the Go toolchain.
package network
