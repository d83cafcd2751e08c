// SPDX-License-Identifier: GPL-2.0
/* tcplife: one record per closed TCP connection, as bcc's tcplife.
 *
 * Everything comes from sock:inet_sock_set_state (4.16+), in every network
 * namespace (tracepoints fire whatever the namespace):
 *  - birth: the time of the last change to SYN_SENT, SYN_RECV or
 *    ESTABLISHED (so a connection's span is from its establishment, as bcc);
 *  - owner: the task in process context at SYN_SENT (connect()), else at
 *    FIN_WAIT1 or LAST_ACK (close() or shutdown() by the side that holds it).
 *    Other changes (ESTABLISHED on the passive side, CLOSE on a reset) run in
 *    softirq, where the current task is whoever was interrupted;
 *  - at CLOSE: bytes from struct tcp_sock (bytes_acked, bytes_received: 4.1+
 *    and 4.6+), addresses, ports, the namespace, and the record. Those
 *    counters follow sequence numbers, so they count the SYN (bytes_acked,
 *    on the side that connected) and FINs (an acked one of ours, a received
 *    one of the peer's): the record has the payload, those taken off.
 * The -p/-- CMD/--cgroup filters are judged for the owner where it is
 * recorded (rbtrace_wanted() looks at the current task): with any of them, a
 * connection without a recorded owner is not reported.
 */
#include "rbtrace.bpf.h"
#include <bpf/bpf_endian.h>
#include "tcplife.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_FIN_WAIT1 4
#define TCP_FIN_WAIT2 5
#define TCP_CLOSE 7
#define TCP_CLOSE_WAIT 8
#define TCP_LAST_ACK 9
#define TCP_CLOSING 11

const volatile __u16 targ_family = 0;          /* -4/-6: AF_INET or AF_INET6 */
const volatile __u32 targ_nlports = 0;         /* -L */
const volatile __u16 targ_lports[TCPLIFE_MAX_PORTS] = {};
const volatile __u32 targ_nrports = 0;         /* -D */
const volatile __u16 targ_rports[TCPLIFE_MAX_PORTS] = {};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TCPLIFE_SOCKS);
	__type(key, __u64);
	__type(value, struct tcplife_birth);
} births SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TCPLIFE_SOCKS);
	__type(key, __u64);
	__type(value, struct tcplife_ident);
} idents SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

RBTRACE_EXPORT_TYPE(struct tcplife_event, tcplife_event);
RBTRACE_EXPORT_TYPE(struct tcplife_ident, tcplife_ident);
RBTRACE_EXPORT_TYPE(struct tcplife_birth, tcplife_birth);

static __always_inline bool port_in(__u16 port, __u32 n, const volatile __u16 *ports)
{
	if (!n)
		return true;
	for (int i = 0; i < TCPLIFE_MAX_PORTS; i++)
		if (i < n && ports[i] == port)
			return true;
	return false;
}

static __always_inline void record_owner(__u64 key, __u32 owner)
{
	struct tcplife_ident id = {};
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	id.pid = pid_tgid >> 32;
	id.owner = owner;
	id.cgroup_id = bpf_get_current_cgroup_id();
	id.wanted = rbtrace_wanted(id.pid);
	bpf_get_current_comm(id.comm, sizeof(id.comm));
	/* connect() names the owner; a close() names it only if none did. */
	bpf_map_update_elem(&idents, &key, &id, owner == TL_OWNER_CONNECT ? BPF_ANY : BPF_NOEXIST);
}

/* How much of bytes_acked and bytes_received are not payload. */
static __always_inline void take_off_flags(const struct sock *sk, int oldstate, __u32 flags, struct tcplife_event *e)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	__u64 sk_flags = BPF_CORE_READ(sk, __sk_common.skc_flags);

	if ((flags & TL_ACTIVE) && e->tx_bytes)
		e->tx_bytes--;
	/* A FIN of ours is acked when nothing is left unacked (it took the
	 * last sequence number, write_seq). */
	if ((flags & TL_FIN_OUT) && e->tx_bytes && BPF_CORE_READ(tp, snd_una) == BPF_CORE_READ(tp, write_seq))
		e->tx_bytes--;
	/* A FIN received in FIN_WAIT2 goes straight to TIME_WAIT (no state
	 * change the tracepoint sees): tcp_fin() set SOCK_DONE. */
	if (oldstate == TCP_FIN_WAIT2 && (sk_flags & (1ULL << bpf_core_enum_value(enum sock_flags, SOCK_DONE))))
		flags |= TL_FIN_IN;
	if ((flags & TL_FIN_IN) && e->rx_bytes)
		e->rx_bytes--;
}

static __always_inline int on_state(const struct sock *sk, int oldstate, int newstate)
{
	struct tcplife_birth *birth, fresh = {};
	__u64 key = (__u64)sk, now;
	struct tcplife_ident *id;
	struct tcplife_event *e;
	__u16 family, lport, rport;

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (targ_family && family != targ_family)
		return 0;

	birth = bpf_map_lookup_elem(&births, &key);
	if (newstate == TCP_ESTABLISHED || newstate == TCP_SYN_SENT || newstate == TCP_SYN_RECV) {
		if (birth) {
			birth->ts_ns = bpf_ktime_get_ns();
		} else {
			fresh.ts_ns = bpf_ktime_get_ns();
			/* Full (TCPLIFE_SOCKS connections open at once): this one
			 * will not be reported, and the user is told so. */
			if (bpf_map_update_elem(&births, &key, &fresh, BPF_ANY))
				rbtrace_count_lost();
			birth = bpf_map_lookup_elem(&births, &key);
		}
	}
	if (birth) {
		if (newstate == TCP_SYN_SENT)
			birth->flags |= TL_ACTIVE;
		else if (newstate == TCP_FIN_WAIT1 || newstate == TCP_LAST_ACK)
			birth->flags |= TL_FIN_OUT;
		else if (newstate == TCP_CLOSE_WAIT || newstate == TCP_CLOSING)
			birth->flags |= TL_FIN_IN;
	}
	if (newstate == TCP_SYN_SENT)
		record_owner(key, TL_OWNER_CONNECT);
	else if (newstate == TCP_FIN_WAIT1 || newstate == TCP_LAST_ACK)
		record_owner(key, TL_OWNER_CLOSE);
	if (newstate != TCP_CLOSE)
		return 0;

	id = bpf_map_lookup_elem(&idents, &key);
	if (!birth)
		goto done; /* never established since we attached */
	if (id ? !id->wanted : (rbtrace_targ_tgid || rbtrace_targ_follow || rbtrace_targ_cgroup))
		goto done;
	/* Not skc_num: the port is released (inet_put_port) before the
	 * tracepoint fires for CLOSE; inet_sport stays, as bcc reads it. */
	lport = bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
	rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (!port_in(lport, targ_nlports, targ_lports) || !port_in(rport, targ_nrports, targ_rports))
		goto done;

	e = rbtrace_reserve(&events, sizeof(*e));
	if (!e)
		goto done;
	now = bpf_ktime_get_ns();
	e->ts_ns = now;
	e->span_ns = now - birth->ts_ns;
	e->rx_bytes = BPF_CORE_READ((struct tcp_sock *)sk, bytes_received);
	e->tx_bytes = BPF_CORE_READ((struct tcp_sock *)sk, bytes_acked);
	take_off_flags(sk, oldstate, birth->flags, e);
	e->netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	e->family = family;
	e->lport = lport;
	e->rport = rport;
	e->oldstate = oldstate;
	if (family == AF_INET) {
		BPF_CORE_READ_INTO((__u32 *)e->laddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)e->raddr, sk, __sk_common.skc_daddr);
		__builtin_memset(e->laddr + 4, 0, 12);
		__builtin_memset(e->raddr + 4, 0, 12);
	} else {
		BPF_CORE_READ_INTO((struct in6_addr *)e->laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO((struct in6_addr *)e->raddr, sk, __sk_common.skc_v6_daddr);
	}
	if (id) {
		e->pid = id->pid;
		e->owner = id->owner;
		e->cgroup_id = id->cgroup_id;
		__builtin_memcpy(e->comm, id->comm, sizeof(e->comm));
	} else {
		e->pid = bpf_get_current_pid_tgid() >> 32;
		e->owner = TL_OWNER_CURRENT;
		e->cgroup_id = bpf_get_current_cgroup_id();
		bpf_get_current_comm(e->comm, sizeof(e->comm));
	}
	bpf_ringbuf_submit(e, 0);
done:
	bpf_map_delete_elem(&births, &key);
	bpf_map_delete_elem(&idents, &key);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tpb_state, const struct sock *sk, const int oldstate, const int newstate)
{
	return on_state(sk, oldstate, newstate);
}

SEC("raw_tp/inet_sock_set_state")
int BPF_PROG(rt_state, const struct sock *sk, const int oldstate, const int newstate)
{
	return on_state(sk, oldstate, newstate);
}

SEC("tracepoint/sock/inet_sock_set_state")
int tp_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	return on_state(ctx->skaddr, ctx->oldstate, ctx->newstate);
}
