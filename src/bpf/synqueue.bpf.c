// SPDX-License-Identifier: GPL-2.0
/* synqueue: SYN and accept queue fill of every TCP listener.
 *
 * Two kinds of data:
 *  - a snapshot of every listener (iter/task_file over every process's
 *    open files, with the owner; else iter/tcp per namespace: queue lengths,
 *    limits, the kernel's per-socket drop counter, the socket inode), read
 *    by user space once per interval;
 *  - samples and counts between snapshots, per listener (keyed by the
 *    listener's struct sock address) in a per-CPU hash that user space drains:
 *      a connection joining a listener's accept queue: max lengths, the
 *      --hist histogram. fentry (else kprobe) on inet_csk_complete_hashdance()
 *      (in every kernel with BTF), else the sock:sk_data_ready tracepoint
 *      (6.2+; on a listener it fires once per enqueue). Without either (the
 *      tracepoint paths on an older kernel) those programs are optional
 *      (AttachPath.optional) and only the iterator's snapshots remain;
 *      skb:kfree_skb        with rx_sk = a listener: final-ACK overflows
 *                           (SKB_DROP_REASON_TCP_LISTEN_OVERFLOW) and drops;
 *      tcp:tcp_retransmit_synack;
 *      and, where the kernel lets us, fentry (else kprobe) on
 *      tcp_v4_conn_request/tcp_v6_conn_request: every SYN, with the queue
 *      lengths it finds, overflows at SYN time and SYN cookies.
 *
 * SYN-time overflows are dropped without a kfree_skb reason (the SYN is
 * "consumed"), so without conn_request probes user space infers them from
 * the listener's sk_drops (model.ts, buildRow).
 *
 * No rbtrace_wanted() here: these programs run in softirq context, where the
 * current task means nothing; -p filters listeners by owner in user space.
 */
#include "rbtrace.bpf.h"
#include "bits.bpf.h"
#include "synqueue.h"

#define AF_INET 2
#define AF_INET6 10
#define ETH_P_IP 0x0800

/* ---- maps -------------------------------------------------------------- */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct listener_key);
	__type(value, struct listener_stats);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct hist_key);
	__type(value, struct hist_value);
} hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct walk_ctl);
} walk SEC(".maps");

/* Not preallocated: sized for a very busy node, costs what it holds. A
 * listener that finds it full is reported by every walk (still exact). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct listener_key);
	__type(value, struct listener_last);
} last SEC(".maps");

/* Listeners in rbtrace's own namespace that no process holds (kernel
 * sockets, or one whose only reference is an fd in flight), by struct sock
 * address, put here by user space after an iter/tcp walk found them: read
 * back each interval by dump_ownerless, so that their queues cost a few
 * reads rather than a walk of every socket of every namespace. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SYNQUEUE_OWNERLESS_MAX);
	__type(key, struct listener_key);
	__type(value, struct ownerless_hint);
} ownerless SEC(".maps");

const volatile bool want_events = false;
const volatile bool want_hist = false;

RBTRACE_EXPORT_TYPE(struct listener_info, listener_info);
RBTRACE_EXPORT_TYPE(struct sq_event, sq_event);
RBTRACE_EXPORT_TYPE(struct walk_ctl, walk_ctl);
RBTRACE_EXPORT_TYPE(struct ownerless_hint, ownerless_hint);
RBTRACE_EXPORT_TYPE(enum sq_event_kind, sq_event_kind);

static struct listener_stats zero_stats;

static __always_inline struct listener_stats *stats_of(__u64 key)
{
	struct listener_stats *s = bpf_map_lookup_elem(&stats, &key);
	if (s)
		return s;
	bpf_map_update_elem(&stats, &key, &zero_stats, BPF_NOEXIST);
	return bpf_map_lookup_elem(&stats, &key);
}

/* Everything is read with BPF_CORE_READ so that the same helpers serve
 * typed pointers (tp_btf, fentry) and raw ones (tracepoint, kprobe). */
static __always_inline bool is_listener(const struct sock *sk)
{
	return sk && BPF_CORE_READ(sk, __sk_common.skc_state) == SYNQUEUE_TCP_LISTEN;
}

static __always_inline __u32 syn_qlen(const struct sock *sk)
{
	const struct inet_connection_sock *icsk = (const void *)sk;
	return (__u32)BPF_CORE_READ(icsk, icsk_accept_queue.qlen.counter);
}

static __always_inline void sample(struct listener_stats *s, __u32 backlog, __u32 qlen)
{
	if (backlog > s->accept_max)
		s->accept_max = backlog;
	if (qlen > s->syn_max)
		s->syn_max = qlen;
}

/* A connection joined the accept queue of listener sk. `at_entry` when
 * called before the kernel moved it from the SYN queue to the accept queue
 * (entry of inet_csk_complete_hashdance(), which does so whenever sk is
 * still listening), not after (sk_data_ready): both report the lengths as
 * they are once it joined. */
static __always_inline int on_enqueue(const struct sock *sk, bool at_entry)
{
	struct listener_stats *s;
	__u32 backlog, limit, qlen;

	if (!is_listener(sk))
		return 0;
	backlog = BPF_CORE_READ(sk, sk_ack_backlog);
	limit = BPF_CORE_READ(sk, sk_max_ack_backlog);
	qlen = syn_qlen(sk);
	if (at_entry) {
		backlog++;
		if (qlen)
			qlen--;
	}
	s = stats_of((__u64)sk);
	if (!s)
		return 0;
	s->enqueues++;
	sample(s, backlog, qlen);
	if (want_hist) {
		struct hist_key hk = { .sk = (__u64)sk, .limit = limit };
		struct hist_value *h = bpf_map_lookup_elem(&hist, &hk);
		if (!h) {
			static struct hist_value zero_hist;
			bpf_map_update_elem(&hist, &hk, &zero_hist, BPF_NOEXIST);
			h = bpf_map_lookup_elem(&hist, &hk);
		}
		if (h) {
			__u32 slot = log2l(backlog);
			if (slot >= SYNQUEUE_HIST_SLOTS)
				slot = SYNQUEUE_HIST_SLOTS - 1;
			h->slots[slot]++;
		}
	}
	return 0;
}

/* Addresses of a received packet, from its headers. */
static __always_inline void fill_remote(struct sq_event *e, const struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u16 th = BPF_CORE_READ(skb, transport_header);
	__u8 ver = 0;
	struct tcphdr tcp = {};

	if (!skb || !head || nh == (__u16)~0U)
		return;
	bpf_probe_read_kernel(&ver, 1, head + nh);
	ver >>= 4;
	if (ver == 4) {
		struct iphdr ip = {};
		bpf_probe_read_kernel(&ip, sizeof(ip), head + nh);
		__builtin_memcpy(e->raddr, &ip.saddr, 4);
	} else if (ver == 6) {
		struct ipv6hdr ip6 = {};
		bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh);
		__builtin_memcpy(e->raddr, &ip6.saddr, 16);
	}
	if (th != (__u16)~0U) {
		bpf_probe_read_kernel(&tcp, sizeof(tcp), head + th);
		e->rport = __builtin_bswap16(tcp.source);
	}
}

static __always_inline void emit(const struct sock *sk, const struct sk_buff *skb, __u32 kind, __u32 reason)
{
	struct sq_event *e;

	if (!want_events)
		return;
	e = rbtrace_reserve(&events, sizeof(*e));
	if (!e)
		return;
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	e->sk = (__u64)sk;
	e->kind = kind;
	e->reason = reason;
	e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (e->family == AF_INET6)
		BPF_CORE_READ_INTO(&e->laddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
	else
		BPF_CORE_READ_INTO((__u32 *)e->laddr, sk, __sk_common.skc_rcv_saddr);
	e->accept_queue = BPF_CORE_READ(sk, sk_ack_backlog);
	e->accept_limit = BPF_CORE_READ(sk, sk_max_ack_backlog);
	e->syn_queue = syn_qlen(sk);
	fill_remote(e, skb);
	bpf_ringbuf_submit(e, 0);
}

/* Our own flavour of the enum: the enumerator is newer than some build BTFs
 * (Debian 12's 6.12, the arm64 objects' vmlinux.h, lacks it); CO-RE matches
 * type and enumerator by their names without the ___rbtrace suffix. */
enum skb_drop_reason___rbtrace { SKB_DROP_REASON_TCP_LISTEN_OVERFLOW___rbtrace = 0 };

/* A packet freed with a reason, rx_sk being the socket that received it. */
static __always_inline int on_kfree_skb(const struct sk_buff *skb, __u32 reason, const struct sock *sk)
{
	struct listener_stats *s;
	/* The reason exists from 6.4; before it, such drops have a vaguer one
	 * (and ~0 matches no reason). Guarded: a missing enumerator would
	 * otherwise fail the CO-RE relocation and the load. */
	__u32 overflow = ~0U;

	if (bpf_core_enum_value_exists(enum skb_drop_reason___rbtrace, SKB_DROP_REASON_TCP_LISTEN_OVERFLOW___rbtrace))
		overflow = bpf_core_enum_value(enum skb_drop_reason___rbtrace, SKB_DROP_REASON_TCP_LISTEN_OVERFLOW___rbtrace);

	if (!is_listener(sk))
		return 0;
	s = stats_of((__u64)sk);
	if (!s)
		return 0;
	s->freed++;
	if (reason == overflow) {
		s->overflows++;
		emit(sk, skb, SQ_OVERFLOW, reason);
	} else {
		s->drops++;
		emit(sk, skb, SQ_DROP, reason);
	}
	return 0;
}

static __always_inline int on_synack_retrans(const struct sock *sk)
{
	struct listener_stats *s;

	if (!is_listener(sk))
		return 0;
	s = stats_of((__u64)sk);
	if (s)
		s->synack_retrans++;
	return 0;
}

/* A SYN reached listener sk (tcp_v{4,6}_conn_request), before the kernel
 * decides: the same tests as tcp_conn_request() tell what it will do. */
static __always_inline int on_syn(const struct sock *sk, const struct sk_buff *skb)
{
	struct listener_stats *s;
	__u32 backlog = BPF_CORE_READ(sk, sk_ack_backlog);
	__u32 limit = BPF_CORE_READ(sk, sk_max_ack_backlog);
	__u32 qlen = syn_qlen(sk);
	__u8 cookies = BPF_CORE_READ(sk, __sk_common.skc_net.net, ipv4.sysctl_tcp_syncookies);
	bool cookie = false;

	s = stats_of((__u64)sk);
	if (!s)
		return 0;
	s->syns++;
	sample(s, backlog, qlen);
	if (cookies == 2 || qlen > limit) {
		if (cookies)
			cookie = true;
		else {
			s->drops++; /* TCPReqQFullDrop */
			emit(sk, skb, SQ_DROP, 0);
			return 0;
		}
	}
	if (backlog > limit) {
		s->overflows++;
		emit(sk, skb, SQ_OVERFLOW, 0);
		return 0;
	}
	if (cookie)
		s->syncookies++;
	return 0;
}

/* ---- snapshot of every listener ----------------------------------------- */
/* One listener's record, from probe reads only (so that both iterators,
 * whose sockets come typed or not, share it). */
static __always_inline void fill_info(struct listener_info *info, struct sock *sk)
{
	struct inet_connection_sock *icsk = (struct inet_connection_sock *)sk;

	info->sk = (__u64)sk;
	info->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	info->port = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (info->family == AF_INET6)
		BPF_CORE_READ_INTO(&info->addr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
	else
		BPF_CORE_READ_INTO((__u32 *)info->addr, sk, __sk_common.skc_rcv_saddr);
	info->accept_queue = BPF_CORE_READ(sk, sk_ack_backlog);
	info->accept_limit = BPF_CORE_READ(sk, sk_max_ack_backlog);
	info->syn_queue = BPF_CORE_READ(icsk, icsk_accept_queue.qlen.counter);
	info->sk_drops = BPF_CORE_READ(sk, sk_drops.counter);
	info->uid = BPF_CORE_READ(sk, sk_uid.val);
	info->ino = BPF_CORE_READ(sk, sk_socket, file, f_inode, i_ino);
	info->netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

/* The same record from a socket the verifier knows the type of (a BTF
 * pointer): plain loads, which the JIT turns into guarded memory reads, in
 * place of a helper call per field (fill_info: ~20 bpf_probe_read_kernel
 * calls, ~0.9 us a listener, most of a 10,000-listener walk's cost). A
 * pointer reached through it (sk_socket, skc_net.net) may be NULL or gone:
 * such a load faults harmlessly and reads 0. `qlen`: the SYN queue length,
 * which lies past struct sock (in inet_connection_sock), so the caller reads
 * it the way its pointer's type allows. */
static __always_inline void fill_info_btf(struct listener_info *info, struct sock *sk, __u32 qlen)
{
	info->sk = (__u64)sk;
	info->family = sk->__sk_common.skc_family;
	info->port = sk->__sk_common.skc_num;
	if (info->family == AF_INET6)
		__builtin_memcpy(info->addr, sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8, 16);
	else
		*(__u32 *)info->addr = sk->__sk_common.skc_rcv_saddr;
	info->accept_queue = sk->sk_ack_backlog;
	info->accept_limit = sk->sk_max_ack_backlog;
	info->syn_queue = qlen;
	info->sk_drops = sk->sk_drops.counter;
	info->uid = sk->sk_uid.val;
	info->ino = sk->sk_socket->file->f_inode->i_ino;
	info->netns = sk->__sk_common.skc_net.net->ns.inum;
}

/* Did this snapshot's open-files walk pass the listener? (Then it has it,
 * with its owner; the iter/tcp walk after it is for listeners no process
 * holds.) Never before a walk sets `walk`: without iter/task_file the
 * iter/tcp walk is the only one. */
static __always_inline bool passed_by_files_walk(__u64 sk)
{
	__u32 zero = 0;
	struct walk_ctl *w = bpf_map_lookup_elem(&walk, &zero);
	struct listener_last *l;

	if (!w || !w->gen)
		return false;
	l = bpf_map_lookup_elem(&last, &sk);
	return l && l->gen == w->gen;
}

/* The namespace of the task that created the iterator (see netns.ts). */
SEC("iter/tcp")
int dump_listeners(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct seq_file *seq = ctx->meta->seq;
	struct listener_info info = {};
	struct tcp_sock *tp;

	if (!skc || skc->skc_state != SYNQUEUE_TCP_LISTEN)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;
	if (passed_by_files_walk((__u64)tp))
		return 0;
	fill_info_btf(&info, (struct sock *)tp, tp->inet_conn.icsk_accept_queue.qlen.counter);
	bpf_seq_write(seq, &info, sizeof(info));
	return 0;
}

/* Each listener of `ownerless` read again by its address. The address comes
 * from user space and the socket may have closed since: it is read with
 * probe reads (fill_info), which cannot fault, and reported only while it is
 * still a listener with the same port, namespace and inode (TCP sockets are
 * SLAB_TYPESAFE_BY_RCU: freed memory stays a socket, so a reused one is
 * told apart by those). One that fails the test is left out: user space
 * drops it, as a walk that no longer finds it would. (iter/bpf_map_elem: 5.9+.) */
SEC("iter/bpf_map_elem")
int dump_ownerless(struct bpf_iter__bpf_map_elem *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct ownerless_hint *hint = ctx->value;
	struct listener_info info = {};
	__u64 *key = ctx->key;
	struct sock *sk;

	if (!key || !hint)
		return 0;
	sk = (struct sock *)*key;
	if (BPF_CORE_READ(sk, __sk_common.skc_state) != SYNQUEUE_TCP_LISTEN)
		return 0;
	fill_info(&info, sk);
	if (info.port != hint->port || info.netns != hint->netns || info.ino != hint->ino)
		return 0;
	bpf_seq_write(seq, &info, sizeof(info));
	return 0;
}

#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define IPPROTO_TCP 6

/* The open-files walk passes a listener without a record when it passed it
 * already in this walk (another fd of it: tasks come in pid order, so the
 * lowest pid owns it, as ss -p and /proc scans report) or, unless the walk
 * is `full`, when `now` (its figures and owner) is what was last reported:
 * on a steady node most of 10,000 listeners cost a map lookup, not a record
 * to fill, copy and parse. */
static __always_inline bool known_to_walk(struct walk_ctl *w, __u64 sk, const struct listener_last *now)
{
	struct listener_last *l = bpf_map_lookup_elem(&last, &sk);

	if (!l)
		return false;
	if (l->gen == w->gen)
		return true;
	if (!w->full && l->ino == now->ino && l->pid == now->pid &&
	    l->accept_queue == now->accept_queue && l->accept_limit == now->accept_limit &&
	    l->syn_queue == now->syn_queue && l->sk_drops == now->sk_drops) {
		l->gen = w->gen;
		w->seen++;
		return true;
	}
	return false;
}

/* Write the listener's record, then mark it as passed (`last`). Written
 * first: when the record does not fit in the seq buffer, the kernel copies
 * the buffer out and runs this program again on the same file, so nothing
 * may be marked as passed until the record is in. */
static __always_inline void write_file_listener(struct seq_file *seq, struct walk_ctl *w, struct listener_info *info,
						struct listener_last *now)
{
	if (bpf_seq_write(seq, info, sizeof(*info)))
		return;
	now->gen = w->gen;
	bpf_map_update_elem(&last, &info->sk, now, BPF_ANY);
	w->seen++;
	w->reported++;
}

/* What known_to_walk() compares, from a record. */
static __always_inline void figures_of(struct listener_last *now, const struct listener_info *info)
{
	now->ino = info->ino;
	now->pid = info->pid;
	now->accept_queue = info->accept_queue;
	now->accept_limit = info->accept_limit;
	now->syn_queue = info->syn_queue;
	now->sk_drops = info->sk_drops;
}

/* The walk's control, or NULL before user space numbered a walk (then every listener is written, unmarked). */
static __always_inline struct walk_ctl *walk_ctl(void)
{
	__u32 zero = 0;
	struct walk_ctl *w = bpf_map_lookup_elem(&walk, &zero);

	return w && w->gen ? w : NULL;
}

/* Every network namespace in one pass: every open file of every process
 * (threads sharing their leader's files are skipped by the kernel), keeping
 * TCP listening sockets, with the process holding them, each reported by
 * known_to_walk and write_file_listener (once per walk; on a delta walk only
 * when changed).
 * iter/task_file is 5.8+; before 5.11 sockets are read with probe reads
 * (file->private_data is a void *), which every kernel with BTF allows. */
SEC("iter/task_file")
int dump_listener_files(struct bpf_iter__task_file *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct listener_info info = {};
	struct listener_last now = {};
	struct walk_ctl *w;
	struct socket *sock;
	struct sock *sk;

	if (!task || !file)
		return 0;
	/* 5.11+: the file's socket as a typed pointer (NULL when the file is not
	 * a socket), then plain loads (fill_info_btf). On older kernels this
	 * branch is dead (CO-RE makes the test a constant) and never verified. */
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_sock_from_file)) {
		struct inet_connection_sock *icsk;
		__u32 qlen;

		sock = bpf_sock_from_file(file);
		if (!sock)
			return 0;
		sk = sock->sk;
		if (!sk || sk->__sk_common.skc_state != SYNQUEUE_TCP_LISTEN || sk->sk_protocol != IPPROTO_TCP)
			return 0;
		if (sk->__sk_common.skc_family != AF_INET && sk->__sk_common.skc_family != AF_INET6)
			return 0;
		icsk = (struct inet_connection_sock *)sk;
		qlen = BPF_CORE_READ(icsk, icsk_accept_queue.qlen.counter);
		/* First only what a delta walk compares; the rest of the record
		 * (address, namespace, uid, comm: more cache lines) only for a
		 * listener it reports. The inode is the file's, in hand. */
		now.ino = file->f_inode->i_ino;
		now.pid = task->tgid;
		now.accept_queue = sk->sk_ack_backlog;
		now.accept_limit = sk->sk_max_ack_backlog;
		now.syn_queue = qlen;
		now.sk_drops = sk->sk_drops.counter;
		w = walk_ctl();
		if (w && known_to_walk(w, (__u64)sk, &now))
			return 0;
		fill_info_btf(&info, sk, qlen);
		info.ino = now.ino;
		info.pid = now.pid;
		__builtin_memcpy(info.comm, task->group_leader->comm, sizeof(info.comm));
		if (w)
			write_file_listener(seq, w, &info, &now);
		else
			bpf_seq_write(seq, &info, sizeof(info));
		return 0;
	}
	if ((BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return 0;
	sock = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk || BPF_CORE_READ(sk, __sk_common.skc_state) != SYNQUEUE_TCP_LISTEN)
		return 0;
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	info.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (info.family != AF_INET && info.family != AF_INET6)
		return 0;
	fill_info(&info, sk);
	info.pid = BPF_CORE_READ(task, tgid);
	BPF_CORE_READ_STR_INTO(&info.comm, task, group_leader, comm);
	figures_of(&now, &info);
	w = walk_ctl();
	if (!w)
		bpf_seq_write(seq, &info, sizeof(info));
	else if (!known_to_walk(w, info.sk, &now))
		write_file_listener(seq, w, &info, &now);
	return 0;
}

/* ---- tp_btf path (no tracefs needed) ------------------------------------ */
/* Optional: sock:sk_data_ready is 6.2+. */
SEC("tp_btf/sk_data_ready")
int BPF_PROG(tpb_data_ready, const struct sock *sk)
{
	return on_enqueue(sk, false);
}

/* Raw arguments: the 4th (rx_sk, 6.11+) may not exist, and the verifier
 * rejects reading an argument the tracepoint does not have, so it is read
 * only where the tracepoint's record has the field (same TRACE_EVENT); the
 * dead branch is never verified. Before it, the socket (if any) is skb->sk. */
SEC("tp_btf/kfree_skb")
int tpb_kfree_skb(__u64 *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx[0];
	__u32 reason = 0;
	const struct sock *sk;

	/* reason is 5.17+ (5.10: kfree_skb(skb, location), no 3rd argument). */
	if (bpf_core_field_exists(struct trace_event_raw_kfree_skb, reason))
		reason = (__u32)ctx[2];
	if (bpf_core_field_exists(struct trace_event_raw_kfree_skb, rx_sk))
		sk = (const struct sock *)ctx[3];
	else
		sk = BPF_CORE_READ(skb, sk);
	return on_kfree_skb(skb, reason, sk);
}

SEC("tp_btf/tcp_retransmit_synack")
int BPF_PROG(tpb_synack, const struct sock *sk, const struct request_sock *req)
{
	return on_synack_retrans(sk);
}

/* ---- classic tracepoint path --------------------------------------------- */
/* Optional: sock:sk_data_ready is 6.2+. */
SEC("tracepoint/sock/sk_data_ready")
int tp_data_ready(struct trace_event_raw_sk_data_ready *ctx)
{
	return on_enqueue(ctx->skaddr, false);
}

SEC("tracepoint/skb/kfree_skb")
int tp_kfree_skb(struct trace_event_raw_kfree_skb *ctx)
{
	const struct sk_buff *skb = ctx->skbaddr;
	const struct sock *sk;
	__u32 reason = 0;

	/* rx_sk appeared in 6.11; before it, the socket (if any) is skb->sk. */
	if (bpf_core_field_exists(ctx->rx_sk))
		sk = BPF_CORE_READ(ctx, rx_sk);
	else
		sk = BPF_CORE_READ(skb, sk);
	/* reason is 5.17+: before it, a drop has none (0, as not_specified). */
	if (bpf_core_field_exists(ctx->reason))
		reason = BPF_CORE_READ(ctx, reason);
	return on_kfree_skb(skb, reason, sk);
}

SEC("tracepoint/tcp/tcp_retransmit_synack")
int tp_synack(struct trace_event_raw_tcp_retransmit_synack *ctx)
{
	return on_synack_retrans(ctx->skaddr);
}

/* ---- per-SYN and per-enqueue probes: fentry, else kprobe ------------------ */
SEC("fentry/tcp_v4_conn_request")
int BPF_PROG(fe_syn4, struct sock *sk, struct sk_buff *skb)
{
	return on_syn(sk, skb);
}

SEC("fentry/tcp_v6_conn_request")
int BPF_PROG(fe_syn6, struct sock *sk, struct sk_buff *skb)
{
	return on_syn(sk, skb);
}

SEC("kprobe/tcp_v4_conn_request")
int BPF_KPROBE(kp_syn4, struct sock *sk, struct sk_buff *skb)
{
	return on_syn(sk, skb);
}

SEC("kprobe/tcp_v6_conn_request")
int BPF_KPROBE(kp_syn6, struct sock *sk, struct sk_buff *skb)
{
	return on_syn(sk, skb);
}

/* The end of every 3-way handshake (tcp_check_req()): with own_req, the
 * request leaves the SYN queue and the child joins the accept queue
 * (inet_csk_reqsk_queue_add(), which cannot be hooked itself: it is inlined
 * here on 6.1; its out-of-line copy serves only TCP Fast Open, whose
 * enqueues these probes do not see). Present and global on 4.x to 6.18,
 * called across files, so the fentry and kprobe paths need no
 * sk_data_ready tracepoint. */
SEC("fentry/inet_csk_complete_hashdance")
int BPF_PROG(fe_enqueue, struct sock *sk, struct sock *child, struct request_sock *req, bool own_req)
{
	return own_req ? on_enqueue(sk, true) : 0;
}

SEC("kprobe/inet_csk_complete_hashdance")
int BPF_KPROBE(kp_enqueue, struct sock *sk, struct sock *child, struct request_sock *req, bool own_req)
{
	return own_req ? on_enqueue(sk, true) : 0;
}
