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

#include "synqueue_snapshot.bpf.h"
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
