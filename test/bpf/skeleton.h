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

struct skel_value {
	__u64 count;            /* a magnitude: number */
	__u64 slots[SKEL_SLOTS];
	char comm[16];
};

#endif
