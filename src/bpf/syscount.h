/* syscount: structs shared by syscount.bpf.c and src/tools/syscount/
 * (layouts generated from the object's BTF at build time). */
#ifndef SYSCOUNT_H
#define SYSCOUNT_H

/* Bytes of the --syscall bitmap: syscall numbers below 8 * this can be
 * selected (x86_64 and arm64 stay below 512). */
#define SYSCOUNT_FILTER_BYTES 128
/* log2 latency slots of --hist, in nanoseconds: slot 39 holds 2^39 ns
 * (about 9 minutes) and everything longer. */
#define SYSCOUNT_HIST_SLOTS 40

/* Per syscall (array indexed by number) or per process (hash keyed by tgid):
 * per-CPU, so no atomics on the hot path. */
struct sc_stats {
	__u64 count;
	__u64 errors;   /* returned a negative errno */
	__u64 total_ns; /* only with latency (-L, --hist, --strace) */
	__u64 unfinished; /* never returned to user space: not in count */
};

/* -P: per process; comm is set when the entry is created, and again after a
 * successful execve (the new image's name). */
struct sc_proc_stats {
	__u64 count;
	__u64 errors;
	__u64 total_ns;
	char comm[16];
};

/* --hist: one per syscall number; not per-CPU (a 320-byte value per syscall
 * per CPU would be large on big machines), so slots are added atomically. */
struct sc_hist {
	__u64 slots[SYSCOUNT_HIST_SLOTS];
};

/* The exporter: failures per (syscall, errno), when want_errnos is set. */
struct sc_errno_key {
	__u32 nr;
	__u32 err; /* positive errno */
};

#endif
