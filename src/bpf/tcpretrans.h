/* tcpretrans: structs shared by tcpretrans.bpf.c and src/tools/tcpretrans
 * (whose layouts are generated from this object's BTF at build time). */
#ifndef TCPRETRANS_H
#define TCPRETRANS_H

#define TCPRETRANS_FLOWS 16384
#define TCPRETRANS_NETNS 1024

enum tcpretrans_kind {
	TR_RETRANS = 1, /* tcp:tcp_retransmit_skb */
	TR_SYNACK = 2,  /* tcp:tcp_retransmit_synack (a listener's SYN-ACK for a pending connection) */
	TR_TLP = 3,     /* tcp_send_loss_probe() called (-l) */
};

/* A connection: -c counts per one, and each event names its own. */
struct tcpretrans_flow {
	__u32 netns;
	__u16 family;
	__u16 lport;
	__u16 rport;
	__u16 pad;
	__u8 laddr[16];
	__u8 raddr[16];
};

/* One retransmit or loss probe (events mode). */
struct tcpretrans_event {
	__u64 ts_ns;
	__u32 kind;           /* enum tcpretrans_kind */
	__u32 state;          /* TCP state of the socket */
	__u32 segs;           /* segments in the retransmitted skb (TcpRetransSegs counts these) */
	__s32 err;            /* the transmit's result (6.16+ reports failed ones too), else 0 */
	struct tcpretrans_flow flow;
};

struct tcpretrans_counts {
	__u64 retrans;        /* retransmitted skbs (err == 0) */
	__u64 segs;           /* their segments */
	__u64 failed;         /* failed retransmits (where the kernel reports them) */
	__u64 synack;         /* SYN-ACKs retransmitted */
	__u64 tlp;            /* loss probes (-l) */
};

#endif
