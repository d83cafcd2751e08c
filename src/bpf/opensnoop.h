/* opensnoop: structs shared by opensnoop.bpf.c and src/tools/opensnoop/
 * (whose layouts are generated from this object's BTF at build time). */
#ifndef OPENSNOOP_H
#define OPENSNOOP_H

/* PATH_MAX, with its NUL: a longer name fails with ENAMETOOLONG. */
#define OPENSNOOP_PATHSIZE 4096
#define OPENSNOOP_AT_FDCWD -100

enum open_syscall {
	OPEN_OPEN = 1,
	OPEN_OPENAT = 2,
	OPEN_OPENAT2 = 3,
};

enum open_event_flags {
	OPEN_PATH_CUT = 1, /* the name filled path[]: cut (the call fails with ENAMETOOLONG) */
	OPEN_PATH_UNREAD = 2, /* the name could not be read (bad pointer: EFAULT) */
};

/* What the entry of a call keeps for its exit (paths with two programs). */
struct open_args {
	__u64 fname;  /* user pointer to the name */
	__u64 flags;  /* openat2's how.flags is 64 bits */
	__u32 mode;
	__s32 dirfd;  /* OPENSNOOP_AT_FDCWD for open() */
	__u32 syscall; /* enum open_syscall */
};

/* One record per completed call, sent up to the end of its path. */
struct open_event {
	__u64 ts_ns;     /* bpf_ktime_get_ns() at the exit */
	__u64 cgroup_id; /* bpf_get_current_cgroup_id() */
	__u64 flags;     /* the open flags as passed */
	__u64 dir_ino RBTRACE_BIG; /* inode of the directory a relative name starts from (cwd or dirfd), 0 if unknown */
	__u32 pid;       /* tgid */
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__s32 ret;       /* fd, or -errno */
	__s32 dirfd;
	__u32 mode;
	__u32 syscall;   /* enum open_syscall */
	__u32 event_flags; /* enum open_event_flags */
	__u32 path_len;  /* bytes of path[] sent, without the NUL */
	char comm[16];
	char path[OPENSNOOP_PATHSIZE];
};

#endif
