// SPDX-License-Identifier: GPL-2.0
/* synq: the accept queue of a listener at each SYN it receives (the talk's
 * tcp_v4_conn_request tracer): how full the queue is when a client knocks.
 * tcp_v4_conn_request runs in softirq context, on behalf of no process, so
 * there is no -p filter: --port picks the listener.
 *   fe_conn_request  fentry (5.5+): cheapest, typed arguments;
 *   kp_conn_request  kprobe, where fentry is not available. */
#include "rbtrace.bpf.h"

const volatile __u16 targ_port = 0;

struct syn_event {
	__u64 ts_ns;
	__u32 backlog;		/* sk_ack_backlog: connections waiting for accept() */
	__u32 max_backlog;	/* sk_max_ack_backlog: listen()'s backlog */
	__u16 port;
	__u16 pad;
};
RBTRACE_EXPORT_TYPE(struct syn_event, syn_event);

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

static __always_inline int emit(struct sock *sk)
{
	__u16 port = BPF_CORE_READ(sk, __sk_common.skc_num);

	if (targ_port && port != targ_port)
		return 0;
	struct syn_event *e = rbtrace_reserve(&events, sizeof(*e));
	if (!e)
		return 0;
	e->ts_ns = bpf_ktime_get_ns();
	e->backlog = BPF_CORE_READ(sk, sk_ack_backlog);
	e->max_backlog = BPF_CORE_READ(sk, sk_max_ack_backlog);
	e->port = port;
	e->pad = 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("fentry/tcp_v4_conn_request")
int BPF_PROG(fe_conn_request, struct sock *sk)
{
	return emit(sk);
}

SEC("kprobe/tcp_v4_conn_request")
int BPF_KPROBE(kp_conn_request, struct sock *sk)
{
	return emit(sk);
}
