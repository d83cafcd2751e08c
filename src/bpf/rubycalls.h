/* rubycalls: structs shared by rubycalls.bpf.c and src/tools/rubycalls/. */
#ifndef RUBYCALLS_H
#define RUBYCALLS_H

#define RUBYCALLS_NAME 64       /* class and method names kept (longer ones cut) */
#define RUBYCALLS_MAX_DEPTH 128 /* nested calls timed per thread */
#define RUBYCALLS_SLOTS 32      /* log2 slots of ns */

enum rubycalls_kind {
	RC_RUBY = 0, /* ruby:method__entry/return: methods written in Ruby */
	RC_C = 1,    /* ruby:cmethod__entry/return: methods written in C */
};

struct rc_key {
	__u32 pid;  /* 0 unless -P */
	__u32 kind; /* enum rubycalls_kind */
	char klass[RUBYCALLS_NAME];
	char method[RUBYCALLS_NAME];
};

/* Cumulative, per CPU (user space sums them). */
struct rc_stats {
	__u64 count;
	__u64 timed;    /* calls whose return was seen (-L) */
	__u64 total_ns;
	__u64 slots[RUBYCALLS_SLOTS]; /* -L: log2 of ns */
};

/* Per thread: entry times of the calls in progress (-L). */
struct rc_stack {
	__u32 depth;
	__u32 pad;
	__u64 ts[RUBYCALLS_MAX_DEPTH];
};

#endif
