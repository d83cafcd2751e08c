/* profile: structs shared by profile.bpf.c and src/tools/profile/. */
#ifndef PROFILE_H
#define PROFILE_H

/* Distinct (process, stacks, comm) keys counted; more are dropped, counted. */
#define PROFILE_MAX_KEYS 40960

enum profile_stacks {
	PROFILE_BOTH = 0,
	PROFILE_USER_ONLY = 1,
	PROFILE_KERNEL_ONLY = 2,
};

struct profile_key {
	__u32 tgid;
	__s32 user_stack;   /* rbtrace_stacks id, or RBTRACE_STACK_NONE/LOST */
	__s32 kernel_stack; /* rbtrace_stacks id, or RBTRACE_STACK_NONE/LOST */
	char comm[16];      /* of the thread sampled */
};

/* new_pids records: a process's first sample. */
struct profile_pid_event {
	__u32 tgid;
};

#endif /* PROFILE_H */
