/* biolatency: structs shared by biolatency.bpf.c and src/tools/biolatency/
 * (layouts generated from the object's BTF at build time). */
#ifndef BIOLATENCY_H
#define BIOLATENCY_H

/* log2 slots, in the unit asked for (us, or ms with -m): slot 39 holds
 * 2^39 us and everything longer, more than any I/O takes. */
#define BIO_HIST_SLOTS 40
/* Requests in flight tracked at once; more are not timed, but counted
 * (bio_counts.untracked). */
#define BIO_MAX_INFLIGHT 16384

/* The block layer's request operations (include/linux/blk_types.h, REQ_OP_*),
 * the low 8 bits of cmd_flags. */
enum bio_op {
	BIO_OP_READ = 0,
	BIO_OP_WRITE = 1,
	BIO_OP_FLUSH = 2,
	BIO_OP_DISCARD = 3,
	BIO_OP_SECURE_ERASE = 5,
	BIO_OP_WRITE_ZEROES = 9,
};

/* A histogram's key: 0 in the fields the options do not split by. */
struct bio_hist_key {
	__u32 dev; /* (major << 20) | first minor of the disk, with -D */
	__u32 op;  /* enum bio_op, with -F */
};

/* One histogram, with exact sums beside the log2 slots (the slots round,
 * the sums do not: what a test or --assert compares). Updated atomically. */
struct bio_hist {
	__u64 slots[BIO_HIST_SLOTS];
	__u64 count;
	__u64 total_ns;
	__u64 bytes;
};

/* A request in flight, from its first sighting (insert with -Q, else issue). */
struct bio_start {
	__u64 insert_ns; /* 0: not seen inserted (issued directly) */
	__u64 issue_ns;  /* 0: not issued yet */
	__u32 pid;       /* the task that inserted or issued it */
	char comm[16];
};

/* --events: one record per completed request (biosnoop). */
struct bio_event {
	__u64 ts_ns;       /* completion, CLOCK_MONOTONIC */
	__u64 latency_ns;  /* issue (or, with -Q, insert) to completion */
	__u64 queued_ns;   /* insert to issue; 0 when not seen inserted */
	__u64 sector;
	__u32 bytes;
	__u32 dev;
	__u32 op;
	__u32 pid;
	__s32 error;       /* blk_status_t at completion; 0: ok */
	char comm[16];
};

/* Global counters (per CPU): requests seen completing without a start
 * (in flight at attach, or the start map was full). */
struct bio_counts {
	__u64 untracked;
};

#endif
