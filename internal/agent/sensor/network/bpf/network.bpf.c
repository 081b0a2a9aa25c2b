// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Vigil network sensor: socket syscalls of every process, reported with the
 * owning process to user space through one ring buffer.
 *
 * Only syscall tracepoints and one sched tracepoint are used (no kprobes,
 * fentry or LSM), so it loads on kernels that offer nothing else. A pair of
 * enter/exit programs per syscall keeps the arguments of the enter side in
 * `pending` (keyed by thread) until the exit side knows the result:
 *
 *   connect            -> KIND_CONNECT  (TCP and UDP; ret 0 or -EINPROGRESS)
 *   accept, accept4    -> KIND_ACCEPT   (the new socket's addresses)
 *   sendto, sendmsg    -> KIND_SEND     (UDP with a destination address)
 *   recvfrom, recvmsg  -> KIND_RECV     (UDP with a source address)
 *   listen             -> KIND_LISTEN
 *
 * In a record, l* is always the local end and r* the remote end; user space
 * turns them into Sigma's Source/Destination by direction.
 * Addresses come from the socket itself (found through the file table) or,
 * for unconnected UDP, from the sockaddr the process passed. The exec'd path
 * of each process is kept in `exes` by sched_process_exec, so an event of a
 * process that has exited before user space reads it still names the image;
 * the command line is copied from the process's own memory at syscall time.
 *
 * A datagram received from port 53 (a DNS answer) is also copied, up to
 * 512 bytes, as a struct dns_msg record, so user space can name the
 * addresses the process resolved.
 *
 * UDP repeats are folded here, before they cost a ring-buffer record: see
 * `dedup` below. Records the ring buffer cannot take are counted in `drops`.
 */
#include "kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_UDPLITE 136
#define EINPROGRESS 115
#define S_IFMT 00170000
#define S_IFSOCK 0140000

#define KIND_CONNECT 1
#define KIND_ACCEPT 2
#define KIND_SEND 3
#define KIND_RECV 4
#define KIND_LISTEN 5
#define KIND_DNS 6 /* struct dns_msg, not struct event */

#define PATH_LEN 256
#define ARGS_LEN 256

/* Set by the loader before load (see Go: loadSpec). */
volatile const __u64 dedup_window_ns = 60ULL * 1000000000ULL;
volatile const __u64 wakeup_bytes = 64 * 1024;

/* One record in the ring buffer. Layout is mirrored by bpf2go (-type event). */
struct event {
	__u64 ts_ns;      /* bpf_ktime_get_ns: CLOCK_MONOTONIC */
	__u64 start_time; /* the process's start (ns since boot): cache key */
	__u32 pid;        /* tgid */
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 repeats; /* UDP records folded into this one since the last report */
	__s32 ret;
	__u16 kind;
	__u16 family;
	__u16 protocol;
	__u16 lport; /* local port, host order */
	__u16 rport; /* remote port, host order; 0 for KIND_LISTEN */
	__u16 args_len;
	__u8 laddr[16]; /* local address: 4 bytes for AF_INET, 16 for AF_INET6 */
	__u8 raddr[16]; /* remote address */
	char comm[16];
	char exe[PATH_LEN]; /* the exec'd path, "" when unknown */
	char args[ARGS_LEN]; /* argv, NUL-separated, as much as fits */
};

#define DNS_LEN 512

/* A DNS answer received by a UDP socket (from port 53): the other record
 * type in the ring buffer, told apart from struct event by its size. */
struct dns_msg {
	__u16 kind; /* KIND_DNS */
	__u16 len;  /* bytes of data used */
	__u32 pad;
	__u8 data[DNS_LEN];
};

/* Forces bpf2go to emit the Go types. */
const struct event *unused_event __attribute__((unused));
const struct dns_msg *unused_dns __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

struct pending {
	__u64 uaddr; /* user sockaddr (or user_msghdr for recvmsg) */
	__u64 buf;   /* recvfrom: the data buffer (for DNS answers) */
	__s32 fd;
	__u16 kind;
	__u16 msghdr; /* uaddr is a user_msghdr whose msg_name is read at exit */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64); /* pid_tgid: one syscall in flight per thread */
	__type(value, struct pending);
} pending SEC(".maps");

struct exe {
	__u64 start_time;
	char path[PATH_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32); /* tgid */
	__type(value, struct exe);
} exes SEC(".maps");

/*
 * UDP dedupe rule: the first datagram a process sends to (or receives from)
 * a peer address and port is reported; later ones between the same process
 * and peer, in the same direction (and, inbound, on the same local port),
 * are only counted until dedup_window_ns has passed since the last report.
 * The next one after that is reported with the count in `repeats`.
 */
struct dedup_key {
	__u32 pid;
	__u16 kind;
	__u16 lport; /* inbound only; 0 outbound */
	__u16 rport;
	__u16 family;
	__u8 raddr[16];
};

struct dedup_val {
	__u64 last_ns;
	__u32 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct dedup_key);
	__type(value, struct dedup_val);
} dedup SEC(".maps");

/* Classic syscall tracepoint contexts (format files: 8-byte common header,
 * __syscall_nr, then 8-byte arguments / ret at offset 16). */
struct sys_enter_ctx {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__u64 args[6];
};

struct sys_exit_ctx {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__s64 ret;
};

struct sched_exec_ctx {
	__u64 common;
	__u32 filename_loc; /* __data_loc: offset in the low 16 bits */
	__s32 pid;
	__s32 old_pid;
};

static __always_inline __u16 bswap16(__u16 v)
{
	return __builtin_bswap16(v);
}

/* sock_of returns the socket behind fd in the current task, or NULL when fd
 * is not a socket. */
static __always_inline struct sock *sock_of(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || fd < 0)
		return 0;
	unsigned int max = BPF_CORE_READ(fdt, max_fds);
	if ((unsigned int)fd >= max)
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	if (!f)
		return 0;
	unsigned short mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return 0;
	struct socket *so = BPF_CORE_READ(f, private_data);
	if (!so)
		return 0;
	return BPF_CORE_READ(so, sk);
}

/* fill_process sets the process fields of e. */
static __always_inline void fill_process(struct event *e)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 pt = bpf_get_current_pid_tgid();
	__u64 ug = bpf_get_current_uid_gid();
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = pt >> 32;
	e->tid = (__u32)pt;
	e->uid = (__u32)ug;
	e->gid = ug >> 32;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->start_time = BPF_CORE_READ(task, group_leader, start_time);
	bpf_get_current_comm(e->comm, sizeof(e->comm));

	/* The image: this process's exec, else (forked, never exec'd since the
	 * sensor started) its parent's. Each entry is checked against the
	 * start time so a reused pid never borrows a dead process's path. */
	e->exe[0] = 0;
	__u32 key = e->pid;
	struct exe *x = bpf_map_lookup_elem(&exes, &key);
	if (x && x->start_time == e->start_time) {
		bpf_probe_read_kernel_str(e->exe, sizeof(e->exe), x->path);
	} else {
		key = e->ppid;
		x = bpf_map_lookup_elem(&exes, &key);
		if (x && x->start_time == BPF_CORE_READ(task, real_parent, group_leader, start_time))
			bpf_probe_read_kernel_str(e->exe, sizeof(e->exe), x->path);
	}

	e->args_len = 0;
	unsigned long start = BPF_CORE_READ(task, mm, arg_start);
	unsigned long end = BPF_CORE_READ(task, mm, arg_end);
	if (start && end > start) {
		unsigned long n = end - start;
		if (n > ARGS_LEN - 1)
			n = ARGS_LEN - 1;
		n &= ARGS_LEN - 1;
		/* A page that is not resident makes the read fail: no args then;
		 * user space falls back to /proc/<pid>/cmdline. */
		if (bpf_probe_read_user(e->args, n, (void *)start) == 0)
			e->args_len = n;
	}
}

/* fill_sock sets the family, protocol and both ends from the socket. It
 * returns 0 for an inet socket, -1 for anything else. */
static __always_inline int fill_sock(struct event *e, struct sock *sk)
{
	e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (e->family != AF_INET && e->family != AF_INET6)
		return -1;
	e->protocol = BPF_CORE_READ(sk, sk_protocol);
	e->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	e->rport = bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (e->family == AF_INET) {
		bpf_core_read(e->laddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(e->raddr, 4, &sk->__sk_common.skc_daddr);
	} else {
		bpf_core_read(e->laddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(e->raddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
	return 0;
}

/* read_peer copies a user sockaddr (AF_INET or AF_INET6) into family, addr
 * and port. It returns -1 for anything else. */
static __always_inline int read_peer(__u64 uaddr, __u16 *family, __u8 *addr, __u16 *port)
{
	__u16 fam = 0;
	if (!uaddr || bpf_probe_read_user(&fam, sizeof(fam), (void *)uaddr))
		return -1;
	if (fam == AF_INET) {
		struct sockaddr_in sin = {};
		if (bpf_probe_read_user(&sin, sizeof(sin), (void *)uaddr))
			return -1;
		__builtin_memcpy(addr, &sin.sin_addr, 4);
		*port = bswap16(sin.sin_port);
	} else if (fam == AF_INET6) {
		struct sockaddr_in6 sin6 = {};
		if (bpf_probe_read_user(&sin6, sizeof(sin6), (void *)uaddr))
			return -1;
		__builtin_memcpy(addr, sin6.sin6_addr, 16);
		*port = bswap16(sin6.sin6_port);
	} else {
		return -1;
	}
	*family = fam;
	return 0;
}

/* udp_fold applies the UDP dedupe rule to one datagram (or UDP connect)
 * of process pid; it returns the number of folded ones to report with this
 * one, or -1 when this one is folded. It runs before a ring-buffer record is
 * reserved: a folded datagram costs a map lookup and nothing else. */
static __always_inline __s64 udp_fold(__u32 pid, __u16 kind, __u16 lport, __u16 family, __u8 *raddr, __u16 rport)
{
	struct dedup_key k = {};
	k.pid = pid;
	k.kind = kind;
	k.lport = kind == KIND_RECV ? lport : 0;
	k.rport = rport;
	k.family = family;
	__builtin_memcpy(k.raddr, raddr, 16);
	__u64 now = bpf_ktime_get_ns();
	struct dedup_val *v = bpf_map_lookup_elem(&dedup, &k);
	if (v) {
		if (now - v->last_ns < dedup_window_ns) {
			__sync_fetch_and_add(&v->count, 1);
			return -1;
		}
		__u32 n = v->count;
		v->count = 0;
		v->last_ns = now;
		return n;
	}
	struct dedup_val nv = {.last_ns = now};
	bpf_map_update_elem(&dedup, &k, &nv, BPF_ANY);
	return 0;
}

static __always_inline void count_drop(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&drops, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
}

static __always_inline void remember_buf(int kind, __u64 fd, __u64 uaddr, int msghdr, __u64 buf)
{
	struct pending p = {.uaddr = uaddr, .buf = buf, .fd = (__s32)fd, .kind = kind, .msghdr = msghdr};
	__u64 id = bpf_get_current_pid_tgid();
	bpf_map_update_elem(&pending, &id, &p, BPF_ANY);
}

static __always_inline void remember(int kind, __u64 fd, __u64 uaddr, int msghdr)
{
	remember_buf(kind, fd, uaddr, msghdr, 0);
}

/* dns_copy sends the first DNS_LEN bytes of a datagram received from port
 * 53 (a DNS answer) as a struct dns_msg record, so user space can name the
 * addresses it resolves (DestinationHostname). */
static __always_inline void dns_copy(struct pending *p, __s64 len)
{
	__u64 buf = p->buf;
	if (p->msghdr) {
		struct user_msghdr m = {};
		struct iovec iov = {};
		if (bpf_probe_read_user(&m, sizeof(m), (void *)p->uaddr) || !m.msg_iov || !m.msg_iovlen ||
		    bpf_probe_read_user(&iov, sizeof(iov), m.msg_iov))
			return;
		buf = (__u64)iov.iov_base;
		if ((__u64)len > iov.iov_len)
			len = iov.iov_len;
	}
	if (!buf || len < 12)
		return;
	struct dns_msg *d = bpf_ringbuf_reserve(&events, sizeof(*d), 0);
	if (!d) {
		count_drop();
		return;
	}
	__u32 n = len > DNS_LEN ? DNS_LEN : (__u32)len;
	n &= DNS_LEN * 2 - 1; /* bounds for the verifier; n <= DNS_LEN already */
	if (n > DNS_LEN || bpf_probe_read_user(d->data, n, (void *)buf)) {
		bpf_ringbuf_discard(d, 0);
		return;
	}
	d->len = n;
	d->kind = KIND_DNS;
	bpf_ringbuf_submit(d, BPF_RB_NO_WAKEUP);
}

/* finish handles the exit of every remembered syscall. */
static __always_inline int finish(struct sys_exit_ctx *ctx, int kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct pending *pp = bpf_map_lookup_elem(&pending, &id);
	if (!pp)
		return 0;
	struct pending p = *pp;
	bpf_map_delete_elem(&pending, &id);
	if (p.kind != kind)
		return 0;
	__s64 ret = ctx->ret;
	if (kind == KIND_CONNECT) {
		if (ret != 0 && ret != -EINPROGRESS)
			return 0;
	} else if (ret < 0) {
		return 0;
	}
	int fd = kind == KIND_ACCEPT ? (int)ret : p.fd;
	struct sock *sk = sock_of(fd);
	if (!sk)
		return 0;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	__u16 protocol = BPF_CORE_READ(sk, sk_protocol);
	int udp = protocol == IPPROTO_UDP || protocol == IPPROTO_UDPLITE;
	int dgram = kind == KIND_SEND || kind == KIND_RECV;
	if (dgram && !udp)
		return 0; /* TCP with an address (fast open) is seen at accept/connect */

	/* The peer: the sockaddr the process passed for unconnected UDP, else
	 * the socket's own remote end (needed here only to fold). */
	__u16 pfam = family, pport = 0;
	__u8 paddr[16] = {};
	if (dgram) {
		__u64 uaddr = p.uaddr;
		if (p.msghdr) {
			uaddr = 0;
			bpf_probe_read_user(&uaddr, sizeof(uaddr), (void *)p.uaddr);
		}
		if (read_peer(uaddr, &pfam, paddr, &pport))
			return 0;
		if (kind == KIND_RECV && pport == 53)
			dns_copy(&p, ret);
		if (family == AF_INET6 && pfam == AF_INET) {
			/* A dual-stack socket given an IPv4 address: keep the record
			 * in the socket's family (the local end is IPv6-shaped), with
			 * the peer as ::ffff:a.b.c.d. */
			__builtin_memcpy(paddr + 12, paddr, 4);
			__builtin_memset(paddr, 0, 10);
			paddr[10] = 0xff;
			paddr[11] = 0xff;
			pfam = AF_INET6;
		}
	} else if (udp && kind == KIND_CONNECT) {
		pport = bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
		if (family == AF_INET)
			bpf_core_read(paddr, 4, &sk->__sk_common.skc_daddr);
		else
			bpf_core_read(paddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
	__s64 repeats = 0;
	if (udp && kind != KIND_LISTEN) {
		repeats = udp_fold(id >> 32, kind, BPF_CORE_READ(sk, __sk_common.skc_num), pfam, paddr, pport);
		if (repeats < 0)
			return 0;
	}

	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop();
		return 0;
	}
	e->kind = kind;
	e->ret = (__s32)ret;
	e->repeats = (__u32)repeats;
	fill_sock(e, sk);
	if (dgram) {
		e->family = pfam;
		__builtin_memcpy(e->raddr, paddr, 16);
		e->rport = pport;
	}
	fill_process(e);
	/* Wake the reader only when a batch has built up; it also drains the
	 * ring every flush interval, so a lone record waits at most that long.
	 * One wakeup per record would cost a context switch per connection. */
	__u64 flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(e, flags);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_connect")
int enter_connect(struct sys_enter_ctx *ctx)
{
	__u16 fam = 0;
	if (bpf_probe_read_user(&fam, sizeof(fam), (void *)ctx->args[1]) || (fam != AF_INET && fam != AF_INET6))
		return 0;
	remember(KIND_CONNECT, ctx->args[0], ctx->args[1], 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int exit_connect(struct sys_exit_ctx *ctx) { return finish(ctx, KIND_CONNECT); }

SEC("tracepoint/syscalls/sys_enter_accept")
int enter_accept(struct sys_enter_ctx *ctx)
{
	remember(KIND_ACCEPT, ctx->args[0], 0, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_accept4")
int enter_accept4(struct sys_enter_ctx *ctx)
{
	remember(KIND_ACCEPT, ctx->args[0], 0, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int exit_accept(struct sys_exit_ctx *ctx) { return finish(ctx, KIND_ACCEPT); }

SEC("tracepoint/syscalls/sys_exit_accept4")
int exit_accept4(struct sys_exit_ctx *ctx) { return finish(ctx, KIND_ACCEPT); }

SEC("tracepoint/syscalls/sys_enter_sendto")
int enter_sendto(struct sys_enter_ctx *ctx)
{
	__u16 fam = 0;
	/* No address: a connected socket, reported at connect. */
	if (bpf_probe_read_user(&fam, sizeof(fam), (void *)ctx->args[4]) || (fam != AF_INET && fam != AF_INET6))
		return 0;
	remember(KIND_SEND, ctx->args[0], ctx->args[4], 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendto")
int exit_sendto(struct sys_exit_ctx *ctx) { return finish(ctx, KIND_SEND); }

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int enter_sendmsg(struct sys_enter_ctx *ctx)
{
	__u64 name = 0;
	__u16 fam = 0;
	if (bpf_probe_read_user(&name, sizeof(name), (void *)ctx->args[1]) || !name ||
	    bpf_probe_read_user(&fam, sizeof(fam), (void *)name) || (fam != AF_INET && fam != AF_INET6))
		return 0;
	remember(KIND_SEND, ctx->args[0], name, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendmsg")
int exit_sendmsg(struct sys_exit_ctx *ctx) { return finish(ctx, KIND_SEND); }

/* The receive side is the hot path of every socket on the host (netlink,
 * unix, TCP): only UDP sockets are remembered. */
static __always_inline int is_udp(int fd)
{
	struct sock *sk = sock_of(fd);
	if (!sk)
		return 0;
	__u16 fam = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (fam != AF_INET && fam != AF_INET6)
		return 0;
	__u16 proto = BPF_CORE_READ(sk, sk_protocol);
	return proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE;
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int enter_recvfrom(struct sys_enter_ctx *ctx)
{
	if (!ctx->args[4] || !is_udp((int)ctx->args[0]))
		return 0;
	remember_buf(KIND_RECV, ctx->args[0], ctx->args[4], 0, ctx->args[1]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_recvfrom")
int exit_recvfrom(struct sys_exit_ctx *ctx) { return finish(ctx, KIND_RECV); }

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int enter_recvmsg(struct sys_enter_ctx *ctx)
{
	if (!ctx->args[1] || !is_udp((int)ctx->args[0]))
		return 0;
	remember(KIND_RECV, ctx->args[0], ctx->args[1], 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_recvmsg")
int exit_recvmsg(struct sys_exit_ctx *ctx) { return finish(ctx, KIND_RECV); }

SEC("tracepoint/syscalls/sys_enter_listen")
int enter_listen(struct sys_enter_ctx *ctx)
{
	remember(KIND_LISTEN, ctx->args[0], 0, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_listen")
int exit_listen(struct sys_exit_ctx *ctx) { return finish(ctx, KIND_LISTEN); }

SEC("tracepoint/sched/sched_process_exec")
int sched_exec(struct sched_exec_ctx *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	/* A 264-byte value is too big for comfort on the 512-byte stack next to
	 * the locals; build it in the map slot instead. */
	static const struct exe zero = {};
	bpf_map_update_elem(&exes, &tgid, &zero, BPF_ANY);
	struct exe *x = bpf_map_lookup_elem(&exes, &tgid);
	if (!x)
		return 0;
	x->start_time = BPF_CORE_READ(task, group_leader, start_time);
	unsigned int off = ctx->filename_loc & 0xFFFF;
	bpf_probe_read_kernel_str(x->path, sizeof(x->path), (void *)ctx + off);
	return 0;
}
