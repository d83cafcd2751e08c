// SPDX-License-Identifier: GPL-2.0
/* opensnoop: every open(), openat() and openat2() that returns, with its
 * name, flags and result: one ring-buffer record per call.
 *
 * Attach paths, chosen at run time by src/tools/opensnoop/probe.ts:
 *   fentry      fexit on the arch's syscall entry points (target set at run
 *               time, e.g. __x64_sys_openat): arguments and result in one
 *               program, no start map, no syscall tracepoint slow path;
 *   tracepoint  syscalls:sys_{enter,exit}_open{,at,at2}: the entry keeps the
 *               arguments per thread, the exit sends the record;
 *   raw_tp      raw_syscalls sys_enter/sys_exit, filtered by syscall number:
 *               needs no tracefs, but runs on every syscall.
 *
 * The name is read at the exit: by then the kernel has copied it (getname),
 * so its page is present and bpf_probe_read_user_str cannot miss it, which
 * it can at the entry of a call whose name sits in a page never touched.
 *
 * Nothing is dropped silently: a failed ring-buffer reserve, or an entry the
 * start map has no room for, is counted in rbtrace_lost (rbtrace.bpf.h),
 * which user space reports.
 */
#include "rbtrace.bpf.h"
#include "opensnoop.h"

const volatile __u32 self_tgid = 0;   /* rbtrace itself: its /proc reads are not shown */
const volatile __u32 targ_tid = 0;    /* -t TID */
const volatile __s64 targ_uid = -1;   /* -u UID */
const volatile bool only_failed = false; /* -x */
const volatile __s32 nr_open = -1;    /* raw_tp path: the arch's numbers (no open on arm64) */
const volatile __s32 nr_openat = -1;
const volatile __s32 nr_openat2 = -1;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024); /* -b sets it */
} events SEC(".maps");

/* Entry -> exit, per thread (tracepoint and raw_tp paths). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct open_args);
} starts SEC(".maps");

/* An open_event (4 KiB of path) is beyond the 512-byte stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct open_event);
} scratch SEC(".maps");

RBTRACE_EXPORT_TYPE(struct open_event, open_event);

static __always_inline bool wanted(void)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;

	if (tgid == self_tgid)
		return false;
	if (targ_tid && (__u32)id != targ_tid)
		return false;
	if (targ_uid >= 0 && (__u32)bpf_get_current_uid_gid() != (__u32)targ_uid)
		return false;
	return rbtrace_wanted(tgid);
}

/* The inode of the directory a relative name starts from: the cwd, or the
 * file behind dirfd. User space checks it against the directory it names
 * (src/tools/opensnoop/resolve.ts), so a cwd changed since is never used. */
static __always_inline __u64 dir_inode(__s32 dirfd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt;
	struct file **fds;
	struct file *f = NULL;

	if (dirfd == OPENSNOOP_AT_FDCWD)
		return BPF_CORE_READ(task, fs, pwd.dentry, d_inode, i_ino);
	if (dirfd < 0)
		return 0;
	fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || (__u32)dirfd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[dirfd]) || !f)
		return 0;
	return BPF_CORE_READ(f, f_path.dentry, d_inode, i_ino);
}

/* openat2's struct open_how: flags and mode are its first two fields. */
struct how_prefix {
	__u64 flags;
	__u64 mode;
};

static __always_inline int emit(const struct open_args *a, long ret)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();
	__u32 zero = 0;
	struct open_event *e;
	long len;

	if (only_failed && ret >= 0)
		return 0;
	e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	e->ts_ns = bpf_ktime_get_ns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->ret = ret;
	e->dirfd = a->dirfd;
	e->syscall = a->syscall;
	e->flags = a->flags;
	e->mode = a->mode;
	if (a->syscall == OPEN_OPENAT2) {
		struct how_prefix how = {};

		bpf_probe_read_user(&how, sizeof(how), (void *)a->flags);
		e->flags = how.flags;
		e->mode = how.mode;
	}
	e->event_flags = 0;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));

	len = bpf_probe_read_user_str(e->path, sizeof(e->path), (void *)a->fname);
	if (len <= 0) {
		/* Kernels before 6.2 (or so) return 0, not 1, for "". */
		if (len < 0)
			e->event_flags |= OPEN_PATH_UNREAD;
		len = 0;
		e->path[0] = 0;
	} else {
		len -= 1;
		if (len == OPENSNOOP_PATHSIZE - 1) {
			char next = 0;

			bpf_probe_read_user(&next, 1, (void *)(a->fname + OPENSNOOP_PATHSIZE - 1));
			if (next)
				e->event_flags |= OPEN_PATH_CUT;
		}
	}
	e->path_len = len;
	e->dir_ino = e->path[0] == '/' ? 0 : dir_inode(a->dirfd);

	__u64 size = __builtin_offsetof(struct open_event, path) + (__u64)len + 1;
	if (size > sizeof(*e))
		size = sizeof(*e);
	rbtrace_output(&events, e, size);
	return 0;
}

static __always_inline int on_enter(__u32 syscall, __s32 dirfd, __u64 fname, __u64 flags, __u32 mode)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	/* openat2: `flags` carries the open_how pointer until the exit reads it. */
	struct open_args a = { .fname = fname, .flags = flags, .mode = mode, .dirfd = dirfd, .syscall = syscall };

	if (!wanted())
		return 0;
	/* A call the map has no room for is a lost event, never a silent one. */
	if (bpf_map_update_elem(&starts, &tid, &a, BPF_ANY))
		rbtrace_count_lost();
	return 0;
}

static __always_inline int on_exit(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct open_args *a = bpf_map_lookup_elem(&starts, &tid);

	if (!a)
		return 0; /* entered before attach */
	emit(a, ret);
	bpf_map_delete_elem(&starts, &tid);
	return 0;
}

/* ---- tracepoint path ---- */
SEC("tracepoint/syscalls/sys_enter_open")
int tp_enter_open(struct trace_event_raw_sys_enter *ctx)
{
	return on_enter(OPEN_OPEN, OPENSNOOP_AT_FDCWD, ctx->args[0], ctx->args[1], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int tp_enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	return on_enter(OPEN_OPENAT, (__s32)ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int tp_enter_openat2(struct trace_event_raw_sys_enter *ctx)
{
	return on_enter(OPEN_OPENAT2, (__s32)ctx->args[0], ctx->args[1], ctx->args[2], 0);
}

SEC("tracepoint/syscalls/sys_exit_open")
int tp_exit_open(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int tp_exit_openat(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int tp_exit_openat2(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx->ret);
}

/* ---- raw_tp path: every syscall, the three numbers kept ---- */
#if defined(__TARGET_ARCH_x86)
#define NR_FIELD orig_ax
#elif defined(__TARGET_ARCH_arm64)
#define NR_FIELD syscallno
#else
#error "opensnoop: no syscall-number register known for this arch"
#endif

SEC("raw_tp/sys_enter")
int BPF_PROG(rt_enter, struct pt_regs *regs, long id)
{
	if (id == nr_openat)
		return on_enter(OPEN_OPENAT, (__s32)PT_REGS_PARM1_CORE_SYSCALL(regs), PT_REGS_PARM2_CORE_SYSCALL(regs),
				PT_REGS_PARM3_CORE_SYSCALL(regs), PT_REGS_PARM4_CORE_SYSCALL(regs));
	if (id == nr_open && nr_open >= 0)
		return on_enter(OPEN_OPEN, OPENSNOOP_AT_FDCWD, PT_REGS_PARM1_CORE_SYSCALL(regs),
				PT_REGS_PARM2_CORE_SYSCALL(regs), PT_REGS_PARM3_CORE_SYSCALL(regs));
	if (id == nr_openat2)
		return on_enter(OPEN_OPENAT2, (__s32)PT_REGS_PARM1_CORE_SYSCALL(regs), PT_REGS_PARM2_CORE_SYSCALL(regs),
				PT_REGS_PARM3_CORE_SYSCALL(regs), 0);
	return 0;
}

SEC("raw_tp/sys_exit")
int BPF_PROG(rt_exit, struct pt_regs *regs, long ret)
{
	long nr = BPF_CORE_READ(regs, NR_FIELD);

	if (nr != nr_openat && nr != nr_openat2 && (nr != nr_open || nr_open < 0))
		return 0;
	return on_exit(ret);
}

/* ---- fentry path: fexit alone sees the arguments (the user's registers,
 * which the syscall wrappers take as a struct pt_regs) and the result. ---- */
static __always_inline int fexit_emit(__u32 syscall, struct pt_regs *regs, long ret)
{
	struct open_args a = { .syscall = syscall, .dirfd = OPENSNOOP_AT_FDCWD };

	if (!wanted())
		return 0;
	if (syscall == OPEN_OPEN) {
		a.fname = PT_REGS_PARM1_CORE_SYSCALL(regs);
		a.flags = PT_REGS_PARM2_CORE_SYSCALL(regs);
		a.mode = PT_REGS_PARM3_CORE_SYSCALL(regs);
	} else {
		a.dirfd = (__s32)PT_REGS_PARM1_CORE_SYSCALL(regs);
		a.fname = PT_REGS_PARM2_CORE_SYSCALL(regs);
		a.flags = PT_REGS_PARM3_CORE_SYSCALL(regs);
		a.mode = syscall == OPEN_OPENAT ? PT_REGS_PARM4_CORE_SYSCALL(regs) : 0;
	}
	return emit(&a, ret);
}

SEC("fexit")
int BPF_PROG(fx_open, struct pt_regs *regs, long ret)
{
	return fexit_emit(OPEN_OPEN, regs, ret);
}

SEC("fexit")
int BPF_PROG(fx_openat, struct pt_regs *regs, long ret)
{
	return fexit_emit(OPEN_OPENAT, regs, ret);
}

SEC("fexit")
int BPF_PROG(fx_openat2, struct pt_regs *regs, long ret)
{
	return fexit_emit(OPEN_OPENAT2, regs, ret);
}
