/* gcstat: structs shared by gcstat.bpf.c and src/tools/gcstat.ts. */
#ifndef GCSTAT_H
#define GCSTAT_H

#define GCSTAT_SLOTS 64

enum gc_phase {
	GC_MARK = 0,
	GC_SWEEP = 1,
	GC_PHASES = 2,
};

struct gc_key {
	__u32 pid;   /* tgid */
	__u32 phase; /* enum gc_phase */
};

/* Per process and phase, since the last drain (user space drains it every interval). */
struct gc_stat {
	__u64 count;
	__u64 total_ns;
	__u64 max_ns;
	char comm[16]; /* of the thread that first ended a phase in the interval */
};

/* log2 of the duration in microseconds */
/* log2 slots of the duration in microseconds */
struct gc_hist {
	__u64 slots[GCSTAT_SLOTS];
};

#endif
