/* runqlat: structs shared by runqlat.bpf.c and src/tools/runqlat/
 * (layouts generated from the object's BTF at build time). */
#ifndef RUNQLAT_H
#define RUNQLAT_H

/* log2 slots in us (ms with -m); slot 39 holds 2^39 us and above. */
#define RQ_HIST_SLOTS 40
/* --max: the worst waits kept per CPU (user space merges the CPUs'). */
#define RQ_WORST 16

/* What a histogram is per. */
enum rq_split {
	RQ_ALL = 0,
	RQ_PROCESS = 1, /* -P: tgid */
	RQ_THREAD = 2,  /* -L: tid */
	RQ_CGROUP = 3,  /* --per-cgroup: v2 cgroup id */
};

/* One histogram, with exact sums beside the log2 slots. Updated atomically. */
struct rql_hist {
	__u64 slots[RQ_HIST_SLOTS];
	__u64 count;
	__u64 total_ns;
	__u64 max_ns;
	char comm[16]; /* -P/-L: the task's name when the entry was made */
};

/* A wait of --max: the task that waited, and the one that had the CPU
 * until it got it (the task switched out as it was switched in). */
struct rql_wait {
	__u64 wait_ns;
	__u64 ts_ns;     /* when it got the CPU, CLOCK_MONOTONIC */
	__u32 pid;
	__u32 tgid;
	__u32 prev_pid;
	__u32 prev_tgid;
	__u32 cpu;
	__u32 pad;
	char comm[16];
	char prev_comm[16];
};

struct rql_worst {
	struct rql_wait waits[RQ_WORST];
};

#endif
