/* Shared by test/bpf/skeleton.bpf.c and what test/unit/skeleton.test.ts
 * generates from it. */
#ifndef SKELETON_TEST_H
#define SKELETON_TEST_H

#define SKEL_SLOTS 16
#define SKEL_BYTES (SKEL_SLOTS * 8)     /* an expression: 128 */
#define SKEL_MASK ((1U << 4) - 1)       /* 15 */
#define SKEL_NAME "not a number"

enum skel_kind {
	SKEL_ONE = 1,
	SKEL_TWO = 2,
};

struct skel_key {
	__u64 addr RBTRACE_BIG; /* an identity: bigint */
	__u32 pid;
	__u32 pad;
};

/* -DRENAMED_FIELD renames count, -DCHANGED_TYPE makes comm a u64: the
 * test expects TypeScript reading the first to fail to type-check. */
struct skel_value {
#ifdef RENAMED_FIELD
	__u64 hits;
#else
	__u64 count;            /* a magnitude: number */
#endif
	__u64 slots[SKEL_SLOTS];
#ifdef CHANGED_TYPE
	__u64 comm;
#else
	char comm[16];
#endif
};

#endif
