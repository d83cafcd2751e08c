/* execsnoop: structs shared by execsnoop.bpf.c and src/tools/execsnoop/
 * (whose layouts are generated from this object's BTF at build time). */
#ifndef EXECSNOOP_H
#define EXECSNOOP_H

#define EXECSNOOP_MAX_ARGS 128  /* ceiling of --max-args */
#define EXECSNOOP_ARGSIZE 256   /* bytes kept of each argument */
#define EXECSNOOP_ARGS_BUF (EXECSNOOP_MAX_ARGS * EXECSNOOP_ARGSIZE)
#define EXECSNOOP_PATHSIZE 256

enum exec_event_kind {
	EXEC_ENTER = 1, /* execve/execveat entered: filename and argv */
	EXEC_EXIT = 2,  /* it returned: retval, and the comm of the new image */
	EXEC_DONE = 3,  /* sched_process_exec: a successful exec, all in one record */
};

enum exec_flags {
	EXEC_MORE_ARGS = 1, /* argv had more than max_args entries (or the area was cut) */
	EXEC_ARGS_RAW = 2,  /* args[] holds the new image's raw argv area (args_size
			     * bytes, NUL-separated); user space splits and cuts it */
	EXEC_INTERP = 4,    /* EXEC_DONE: an interpreter ran (interp): args are its argv */
	EXEC_BY_FD = 8,     /* EXEC_DONE: file named by descriptor: filename is /dev/fd/N[/PATH] */
};

/* One record for both kinds; an exit record is sent without the arrays.
 * Argument i is at args[i * EXECSNOOP_ARGSIZE]; arg_len[i] is its length
 * (so empty strings survive), arg_cut bit i says it was cut. An ENTER record
 * is sent up to the end of its last argument's slot. */
struct exec_event {
	__u64 ts_ns;   /* bpf_ktime_get_ns() */
	__u64 cgroup_id; /* bpf_get_current_cgroup_id(): the v2 cgroup's inode, resolved to a path in user space */
	__u32 kind;
	__u32 pid;     /* tgid */
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__s32 retval;
	__u32 args_count;
	__u32 args_size;
	__u32 flags;
	char comm[16];
	char filename[EXECSNOOP_PATHSIZE];
	char interp[EXECSNOOP_PATHSIZE]; /* EXEC_DONE with EXEC_INTERP only */
	__u16 arg_len[EXECSNOOP_MAX_ARGS];
	__u8 arg_cut[EXECSNOOP_MAX_ARGS / 8];
	char args[EXECSNOOP_ARGS_BUF];
};

#endif
