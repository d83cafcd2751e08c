/* synqueue: structs shared by synqueue.bpf.c and src/tools/synqueue/
 * (whose layouts are generated from this object's BTF at build time). A
 * listener's struct sock address is its identity on both sides: tagged
 * RBTRACE_BIG, it reaches TypeScript as an exact bigint. */
#ifndef SYNQUEUE_H
#define SYNQUEUE_H

#define SYNQUEUE_HIST_SLOTS 32
#define SYNQUEUE_TCP_LISTEN 10

/* The key of the maps kept per listener (stats, last, ownerless): its
 * struct sock address, the same 8 bytes as a __u64. */
struct listener_key {
	__u64 sk RBTRACE_BIG;
};

/* Per listener (key: the listener's struct sock address), per CPU, between
 * two reports: user space drains the map each interval. Fields named *max*
 * are folded across CPUs with max() by the SDK, the rest are summed. */
struct listener_stats {
	__u64 enqueues;       /* connections that joined the accept queue */
	__u64 overflows;      /* accept queue full: SYN (fentry/kprobe) or final ACK (kfree_skb) dropped */
	__u64 drops;          /* other packets the listener dropped (kfree_skb with rx_sk = listener) */
	__u64 syncookies;     /* SYNs that found the SYN queue full with cookies on (fentry/kprobe) */
	__u64 synack_retrans; /* tcp:tcp_retransmit_synack */
	__u64 syns;           /* SYNs seen (fentry/kprobe only) */
	__u64 freed;          /* every kfree_skb with rx_sk = listener (each also bumped sk_drops) */
	__u32 accept_max;     /* most sk_ack_backlog seen */
	__u32 syn_max;        /* most icsk_accept_queue.qlen seen */
};

/* --hist: accept queue length at each enqueue, per listener and limit (as
 * bcc's tcpsynbl keys by backlog limit). */
struct hist_key {
	__u64 sk RBTRACE_BIG;
	__u32 limit;
	__u32 pad;
};

struct hist_value {
	__u64 slots[SYNQUEUE_HIST_SLOTS];
};

/* One record per listening socket, written by the iter/tcp program (its own
 * namespace) and by the iter/task_file one (every namespace, with owner). */
struct listener_info {
	__u64 sk RBTRACE_BIG;
	__u64 ino;            /* socket inode: matched against /proc/PID/fd */
	__u32 family;
	__u32 port;
	__u8 addr[16];        /* IPv4 in the first 4 bytes */
	__u32 accept_queue;   /* sk_ack_backlog */
	__u32 accept_limit;   /* sk_max_ack_backlog */
	__u32 syn_queue;      /* icsk_accept_queue.qlen */
	__u32 sk_drops;       /* the kernel's per-socket drop counter (tcp_listendrop) */
	__u32 uid;
	__u32 netns;          /* inode of the socket's network namespace */
	__u32 pid;            /* iter/task_file: the owner (tgid of the first process holding it), else 0 */
	__u32 pad;
	char comm[16];        /* iter/task_file: the owner's comm */
};

/* The open-files walk's control (one entry, written by user space before
 * each walk): it reports a listener only when something user space keeps
 * of it changed since the walk that last reported it (listener_last), unless
 * `full`. `seen` counts the distinct listeners the walk passed, so user space
 * can tell that none it knows has gone (listener-table.ts, checkDelta). */
struct walk_ctl {
	__u32 gen;            /* this walk's number (never 0) */
	__u32 full;           /* report every listener */
	__u32 seen;           /* written by the walk */
	__u32 reported;       /* written by the walk: records written */
};

/* What the open-files walk last reported of a listener (key: struct sock address). */
struct listener_last {
	__u64 ino;
	__u32 gen;            /* the walk that last passed it (one record per listener per walk) */
	__u32 pid;
	__u32 accept_queue;
	__u32 accept_limit;
	__u32 syn_queue;
	__u32 sk_drops;
};

/* A listener no process holds, as the iter/tcp walk found it: what must
 * still match when it is read again by its address (dump_ownerless). */
#define SYNQUEUE_OWNERLESS_MAX 1024
struct ownerless_hint {
	__u64 ino;
	__u32 netns;
	__u32 port;
};

enum sq_event_kind {
	SQ_OVERFLOW = 1, /* accept queue full */
	SQ_DROP = 2,     /* any other listener drop */
};

/* --events: one per overflow/drop seen one by one. */
struct sq_event {
	__u64 ts_ns;
	__u64 sk RBTRACE_BIG;
	__u32 kind;
	__u32 reason;         /* enum skb_drop_reason, 0 when from conn_request */
	__u32 family;
	__u16 lport;
	__u16 rport;
	__u8 laddr[16];
	__u8 raddr[16];
	__u32 accept_queue;
	__u32 accept_limit;
	__u32 syn_queue;
	__u32 pad;
};

#endif
