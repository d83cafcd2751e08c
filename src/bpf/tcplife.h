/* tcplife: structs shared by tcplife.bpf.c and src/tools/tcplife (whose
 * layouts are generated from this object's BTF at build time). */
#ifndef TCPLIFE_H
#define TCPLIFE_H

#define TCPLIFE_MAX_PORTS 8
#define TCPLIFE_SOCKS 32768

/* Where a connection's pid and comm come from. */
enum tcplife_owner {
	TL_OWNER_CURRENT = 0, /* none recorded: the task running at close (may be unrelated: softirq) */
	TL_OWNER_CONNECT = 1, /* the task that called connect() (state SYN_SENT) */
	TL_OWNER_CLOSE = 2,   /* the task that called close()/shutdown() (FIN_WAIT1, LAST_ACK) */
};

/* What a socket went through, as its state changes show (struct birth). */
enum tcplife_flags {
	TL_ACTIVE = 1,   /* it sent the SYN (connect): bytes_acked counts it */
	TL_FIN_OUT = 2,  /* it sent a FIN (FIN_WAIT1, LAST_ACK) */
	TL_FIN_IN = 4,   /* a FIN came in (CLOSE_WAIT, CLOSING): bytes_received counts it */
};

struct tcplife_birth {
	__u64 ts_ns;
	__u32 flags;          /* enum tcplife_flags */
	__u32 pad;
};

/* Recorded in process context, per socket (key: struct sock address). */
struct tcplife_ident {
	__u64 cgroup_id;
	__u32 pid;
	__u32 owner;          /* enum tcplife_owner */
	__u32 wanted;         /* rbtrace_wanted() of that task (-p, -- CMD, --cgroup) */
	__u32 pad;
	char comm[16];
};

/* One closed connection. */
struct tcplife_event {
	__u64 ts_ns;          /* CLOCK_MONOTONIC at close */
	__u64 span_ns;        /* since the last of SYN_SENT/SYN_RECV/ESTABLISHED (bcc's birth) */
	__u64 rx_bytes;       /* payload received: bytes_received less an in-order FIN */
	__u64 tx_bytes;       /* payload acknowledged: bytes_acked less the SYN and an acked FIN */
	__u64 cgroup_id;
	__u32 pid;
	__u32 owner;          /* enum tcplife_owner */
	__u32 netns;          /* inode of the socket's network namespace */
	__u16 family;
	__u16 lport;
	__u16 rport;
	__u16 oldstate;       /* the state it closed from */
	__u8 laddr[16];       /* IPv4 in the first 4 bytes */
	__u8 raddr[16];
	char comm[16];
};

#endif
