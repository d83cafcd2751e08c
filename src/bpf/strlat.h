/* strlat: structs shared by strlat.bpf.c and src/tools/strlat/. */
#ifndef STRLAT_H
#define STRLAT_H

#include "rbtrace_ustack.h"

#define STRLAT_MAX_DEPTH 32  /* nested/recursive calls kept per thread */
#define STRLAT_SLOTS 64      /* log2 slots */
#define STRLAT_MAX_FUNCS 64  /* functions timed at once (--func a,b / a glob) */

enum strlat_hist_kind {
	STRLAT_HIST_NS = 0,   /* latency, log2 of ns (JSON, percentiles) */
	STRLAT_HIST_UNIT = 1, /* latency, log2 in the unit shown (-u, -m) */
	STRLAT_HIST_SIZE = 2, /* --size: log2 of the length argument */
	STRLAT_HIST_KINDS = 3,
};

/* Cumulative, per CPU (summed by user space), one per function. */
struct strlat_stats {
	__u64 count;
	__u64 total_ns;
	__u64 dropped;   /* calls deeper than STRLAT_MAX_DEPTH: not timed */
	__u64 stale;     /* frames whose return never came (longjmp, exceptions) */
	__u64 unmatched; /* returns without an entry (entered before attach) */
	__u64 stack_missed; /* --stack: calls not kept by stack (the table or, with --unwind dwarf, the ring buffer full) */
};

/* The longest call of an interval, per CPU, one per function: user space
 * takes the largest over the CPUs (src/core/bpf/maps.ts folds a field named
 * max_ns by max) and zeroes it after reading (a max cannot be diffed). */
struct strlat_max {
	__u64 max_ns;
};

/* --stack: latency by calling stack, keyed by function, process and the
 * stack ids of rbtrace_stacks (-1: none). */
#define STRLAT_STACK_KEYS 10240

struct strlat_stack_key {
	__u32 func;
	__u32 tgid;
	__s32 ustack;
	__s32 kstack;
};

struct strlat_stack_val {
	__u64 count;
	__u64 total_ns;
	__u64 max_ns;
};

/* --stack --unwind dwarf: one record per call, sent at its return (the
 * stack is then the caller's, as the stack-id path sees it), with the user
 * registers and a copy of the stack (src/bpf/include/rbtrace_ustack.bpf.h)
 * that user space unwinds with .eh_frame and aggregates like stack_lat. */
#define STRLAT_CALLS_RING (8 * 1024 * 1024)

struct strlat_call {
	__u64 ns;        /* the call's latency */
	__u32 func;
	__u32 tgid;
	__u64 ip;        /* user registers at the return: ip is the return address */
	__u64 sp;
	__u64 bp;
	__u64 lr;        /* arm64: x30, the link register (rbtrace_user_lr); 0 on x86-64 */
	__u32 stack_len; /* bytes of stack[] valid */
	__u32 pad;
	__u8 stack[RBTRACE_USTACK_BYTES + RBTRACE_USTACK_PAGE];
};

/* One per function and kind: key = function * STRLAT_HIST_KINDS + kind. */
struct strlat_hist {
	__u64 slots[STRLAT_SLOTS];
};

#endif
