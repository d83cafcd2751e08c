// SPDX-License-Identifier: GPL-2.0
/* tcpretrans: TCP retransmits (tcp:tcp_retransmit_skb, 4.15+), SYN-ACK
 * retransmits (tcp:tcp_retransmit_synack) and, with -l, tail-loss probes
 * (tcp_send_loss_probe() has no tracepoint: fentry, else kprobe, both
 * optional). Every namespace: these fire in softirq or timer context, so no
 * per-process filter applies (the current task is whoever was interrupted).
 *
 * Three outputs, chosen by .rodata: one ring-buffer record per event
 * (want_events), counts per connection (want_flows, bcc's -c), and counts
 * per network namespace (always: the exporter's counter and the totals).
 */
#include "rbtrace.bpf.h"
#include <bpf/bpf_endian.h>
#include "tcpretrans.h"

#define AF_INET 2

const volatile bool want_events = true;
const volatile bool want_flows = false;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, TCPRETRANS_FLOWS);
	__type(key, struct tcpretrans_flow);
	__type(value, struct tcpretrans_counts);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, TCPRETRANS_NETNS);
	__type(key, __u32);
	__type(value, struct tcpretrans_counts);
} netns_counts SEC(".maps");

RBTRACE_EXPORT_TYPE(struct tcpretrans_event, tcpretrans_event);

/* A request_sock starts with a struct sock_common as a full socket does, so
 * the same reads name a pending connection's addresses. */
static __always_inline void read_flow(const struct sock_common *skc, struct tcpretrans_flow *f)
{
	f->netns = BPF_CORE_READ(skc, skc_net.net, ns.inum);
	f->family = BPF_CORE_READ(skc, skc_family);
	f->lport = BPF_CORE_READ(skc, skc_num);
	f->rport = bpf_ntohs(BPF_CORE_READ(skc, skc_dport));
	if (f->family == AF_INET) {
		BPF_CORE_READ_INTO((__u32 *)f->laddr, skc, skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)f->raddr, skc, skc_daddr);
	} else {
		BPF_CORE_READ_INTO((struct in6_addr *)f->laddr, skc, skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO((struct in6_addr *)f->raddr, skc, skc_v6_daddr);
	}
}

static __always_inline void add(void *map, void *key, __u32 kind, __u32 segs, bool failed)
{
	struct tcpretrans_counts zero = {}, *c;

	c = bpf_map_lookup_elem(map, key);
	if (!c) {
		bpf_map_update_elem(map, key, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(map, key);
		if (!c)
			return;
	}
	/* Per-CPU values: no atomics needed. */
	if (failed)
		c->failed++;
	else if (kind == TR_RETRANS) {
		c->retrans++;
		c->segs += segs;
	} else if (kind == TR_SYNACK)
		c->synack++;
	else
		c->tlp++;
}

static __always_inline int on_event(const struct sock_common *skc, __u32 kind, __u32 state, __u32 segs, int err)
{
	struct tcpretrans_flow f = {};
	struct tcpretrans_event *e;

	read_flow(skc, &f);
	add(&netns_counts, &f.netns, kind, segs, err != 0);
	if (want_flows)
		add(&flows, &f, kind, segs, err != 0);
	if (!want_events)
		return 0;
	e = rbtrace_reserve(&events, sizeof(*e));
	if (!e)
		return 0;
	e->ts_ns = bpf_ktime_get_ns();
	e->kind = kind;
	e->state = state;
	e->segs = segs;
	e->err = err;
	__builtin_memcpy(&e->flow, &f, sizeof(f));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* tcp_skb_pcount(): the skb's segment count, in its control block. */
static __always_inline __u32 skb_segs(const struct sk_buff *skb)
{
	struct tcp_skb_cb *cb = (struct tcp_skb_cb *)((struct sk_buff *)skb)->cb;
	__u16 segs = BPF_CORE_READ(cb, tcp_gso_segs);

	return segs ? segs : 1;
}

static __always_inline int on_retrans(const struct sock *sk, const struct sk_buff *skb, int err)
{
	return on_event(&sk->__sk_common, TR_RETRANS, BPF_CORE_READ(sk, __sk_common.skc_state), skb_segs(skb), err);
}

static __always_inline int on_synack(const struct request_sock *req)
{
	/* The pending connection's state is SYN_RECV (3) whatever the listener's. */
	return on_event(&req->__req_common, TR_SYNACK, 3, 1, 0);
}

static __always_inline int on_tlp(const struct sock *sk)
{
	return on_event(&sk->__sk_common, TR_TLP, BPF_CORE_READ(sk, __sk_common.skc_state), 1, 0);
}

/* The 6.16+ record (and the tracepoint's third argument, err), named here
 * so that the object builds against any vmlinux.h; CO-RE finds it, or not,
 * in the running kernel. */
struct trace_event_raw_tcp_retransmit_skb___new {
	const void *skbaddr;
	const void *skaddr;
	int err;
} __attribute__((preserve_access_index));

/* ---- tp_btf and raw_tp: the arguments. tcp_retransmit_skb has a third,
 * err, since 6.16 (and fires for failed retransmits too); reading an argument
 * the tracepoint lacks is refused, so it is read only where the tracepoint's
 * record has the field (the dead branch is never verified). */
static __always_inline int retrans_args(__u64 *ctx)
{
	int err = 0;

	if (bpf_core_field_exists(struct trace_event_raw_tcp_retransmit_skb___new, err))
		err = (int)ctx[2];
	return on_retrans((const struct sock *)ctx[0], (const struct sk_buff *)ctx[1], err);
}

SEC("tp_btf/tcp_retransmit_skb")
int tpb_retrans(__u64 *ctx)
{
	return retrans_args(ctx);
}

SEC("tp_btf/tcp_retransmit_synack")
int BPF_PROG(tpb_synack, const struct sock *sk, const struct request_sock *req)
{
	return on_synack(req);
}

SEC("raw_tp/tcp_retransmit_skb")
int rt_retrans(__u64 *ctx)
{
	return retrans_args(ctx);
}

SEC("raw_tp/tcp_retransmit_synack")
int BPF_PROG(rt_synack, const struct sock *sk, const struct request_sock *req)
{
	return on_synack(req);
}

/* ---- classic tracepoints: the record's struct was renamed with err (6.16);
 * before it, tcp_retransmit_skb used tcp_event_sk_skb's. */
struct trace_event_raw_tcp_event_sk_skb___old {
	const void *skbaddr;
	const void *skaddr;
} __attribute__((preserve_access_index));

SEC("tracepoint/tcp/tcp_retransmit_skb")
int tp_retrans(void *ctx)
{
	if (bpf_core_type_exists(struct trace_event_raw_tcp_retransmit_skb___new)) {
		struct trace_event_raw_tcp_retransmit_skb___new *r = ctx;

		return on_retrans(r->skaddr, r->skbaddr, BPF_CORE_READ(r, err));
	}
	struct trace_event_raw_tcp_event_sk_skb___old *o = ctx;

	return on_retrans(o->skaddr, o->skbaddr, 0);
}

SEC("tracepoint/tcp/tcp_retransmit_synack")
int tp_synack(struct trace_event_raw_tcp_retransmit_synack *ctx)
{
	return on_synack(ctx->req);
}

/* ---- -l: tail-loss probes (no tracepoint) ---- */
SEC("fentry/tcp_send_loss_probe")
int BPF_PROG(fe_tlp, struct sock *sk)
{
	return on_tlp(sk);
}

SEC("kprobe/tcp_send_loss_probe")
int BPF_KPROBE(kp_tlp, struct sock *sk)
{
	return on_tlp(sk);
}
