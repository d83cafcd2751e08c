// SPDX-License-Identifier: GPL-2.0
/* syscount: per-syscall (or per-process) counts, errors and latency,
 * aggregated in the kernel: no event per syscall ever reaches user space.
 *
 * Attach paths, chosen at run time by src/tools/syscount/probe.ts:
 *   fentry  fentry/fexit on x64_sys_call (x86_64, kernel 6.9+): the one
 *           function every native 64-bit syscall goes through (nr and return
 *           value are its arguments/result); on arm64 invoke_syscall (the fa_
 *           programs below; src/core/bpf/arch.ts names the target). Older x86
 *           kernels have no such function, so the path is skipped there.
 *   tp_btf  the raw_syscalls sys_enter/sys_exit tracepoints as BTF-typed
 *           programs (pt_regs read directly, no helper call);
 *   raw_tp  the same tracepoints as plain raw tracepoints (pt_regs read with
 *           bpf_probe_read_kernel); needs neither BTF attach nor tracefs.
 * There is no kprobe path: a kprobe needs a kretprobe on every syscall to see
 * errors, which costs more than the tracepoints that every kernel with
 * kprobes also has.
 *
 * Count mode loads only an exit program (it sees the number and the result)
 * that uses no latency map (*_count: neither start map is created); latency
 * (-L, --hist, --strace) adds the entry program, which stores a start time
 * per thread: in task-local storage (5.11+), else (5.10) in a hash keyed by
 * thread id (the tbh_ and rth_ programs, see the end of this file).
 *
 * Filters are `const volatile` (.rodata): the verifier sees them as constants
 * and prunes the branches of filters that are off.
 */
#include "rbtrace.bpf.h"
#include "bits.bpf.h"
#include "syscount.h"

const volatile bool by_process = false;     /* -P */
const volatile bool want_latency = false;   /* -L, --hist, --strace */
const volatile bool want_hist = false;      /* --hist */
const volatile bool only_failed = false;    /* -x */
const volatile __s32 only_errno = 0;        /* -e ERRNO */
const volatile __u32 targ_tid = 0;          /* --tid */
const volatile __u32 self_tgid = 0;         /* rbtrace itself: never counted */
const volatile bool filter_syscalls = false; /* --syscall */
const volatile __u8 syscall_bitmap[SYSCOUNT_FILTER_BYTES] = {};
const volatile bool filter_comm = false;    /* -c COMM */
const volatile char targ_comm[16] = {};
const volatile __s32 nr_execve = -1;        /* -P: refresh comm after exec */
const volatile __s32 nr_execveat = -1;
/* rt_sigreturn replaces the registers, the number's among them (orig_ax is
 * -1 after it), so the exit side sees -1 for it. */
const volatile __s32 nr_rt_sigreturn = -1;
#define SYSCOUNT_ENOSYS 38 /* the same on every Linux arch rbtrace builds for */
/* A new task's first return is from the clone/fork that made it (0): the
 * parent's call, returning twice. strace counts it once; so do we. */
const volatile __s32 nr_clone = -1;
const volatile __s32 nr_clone3 = -1;
const volatile __s32 nr_fork = -1;
const volatile __s32 nr_vfork = -1;
/* rbtrace exporter: also count failures per (syscall, errno) in `errnos`. */
const volatile bool want_errnos = false;

/* Per syscall number. User space sizes it to the arch's table; numbers
 * beyond it (x32, bogus numbers) go to `rare`. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct sc_stats);
} syscalls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct sc_stats);
} rare SEC(".maps");

/* -P: per process (tgid). User space drains it at each report. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct sc_proc_stats);
} procs SEC(".maps");

/* --hist: per syscall number (sized like `syscalls`, 1 entry without --hist). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct sc_hist);
} hists SEC(".maps");

/* Latency: entry time per thread (a thread may change CPU inside a syscall,
 * so this cannot be per-CPU). Task-local storage: a pointer cached in the
 * task, no hashing, no insert/delete per syscall, freed with the task. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64); /* bpf_ktime_get_ns() at entry; 0: none */
} starts SEC(".maps");

/* want_errnos: failures per (syscall, errno); a few hundred pairs occur on a
 * busy system. Per-CPU values, summed by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct sc_errno_key);
	__type(value, __u64);
} errnos SEC(".maps");

RBTRACE_EXPORT_TYPE(struct sc_errno_key, sc_errno_key);
RBTRACE_EXPORT_TYPE(struct sc_proc_stats, sc_proc_stats);
RBTRACE_EXPORT_TYPE(struct sc_hist, sc_hist);

static __always_inline bool comm_matches(void)
{
	char comm[16];
	int i;

	bpf_get_current_comm(comm, sizeof(comm));
	for (i = 0; i < 16; i++) {
		if (comm[i] != targ_comm[i])
			return false;
		if (comm[i] == 0)
			break;
	}
	return true;
}

/* Filters known at entry: who makes the call, and which call it is. */
static __always_inline bool wanted(__u64 id, long nr)
{
	__u32 tgid = id >> 32;

	if (tgid == self_tgid)
		return false;
	/* -- CMD: before its exec the command's pid is rbtrace's gate (perl or bash);
	 * of it only the exec itself is counted, as strace -f CMD counts it. */
	if (!rbtrace_wanted(tgid) &&
	    !((nr == nr_execve || nr == nr_execveat) && rbtrace_follow_pending(tgid)))
		return false;
	if (targ_tid && (__u32)id != targ_tid)
		return false;
	if (filter_syscalls) {
		if (nr < 0 || nr >= SYSCOUNT_FILTER_BYTES * 8)
			return false;
		if (!(syscall_bitmap[nr >> 3] & (1 << (nr & 7))))
			return false;
	}
	if (filter_comm && !comm_matches())
		return false;
	return true;
}

/* Where a thread's entry time lives; a compile-time constant of each program. */
enum start_store { START_TASK, START_TID, START_NONE };
static __always_inline __u64 *start_slot(enum start_store store, bool create);
static __always_inline void start_done(enum start_store store);

static __always_inline int on_enter(long nr, enum start_store store)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 *start;

	if (!wanted(id, nr))
		return 0;
	start = start_slot(store, true);
	if (start)
		*start = bpf_ktime_get_ns();
	return 0;
}

static __always_inline void add_proc(__u32 tgid, long nr, long ret, bool failed, __u64 delta)
{
	struct sc_proc_stats *p = bpf_map_lookup_elem(&procs, &tgid);

	if (!p) {
		struct sc_proc_stats zero = {};

		bpf_get_current_comm(zero.comm, sizeof(zero.comm));
		bpf_map_update_elem(&procs, &tgid, &zero, BPF_NOEXIST);
		p = bpf_map_lookup_elem(&procs, &tgid);
		if (!p)
			return; /* map full */
	} else if (ret == 0 && (nr == nr_execve || nr == nr_execveat)) {
		bpf_get_current_comm(p->comm, sizeof(p->comm));
	}
	p->count++;
	if (failed)
		p->errors++;
	p->total_ns += delta;
}

/* The figures of syscall nr: its slot in the array, else in `rare`. */
static __always_inline struct sc_stats *stats_of(long nr)
{
	__u32 key = (__u32)nr;
	struct sc_stats *s = bpf_map_lookup_elem(&syscalls, &key);

	if (!s) {
		s = bpf_map_lookup_elem(&rare, &key);
		if (!s) {
			struct sc_stats zero = {};

			bpf_map_update_elem(&rare, &key, &zero, BPF_NOEXIST);
			s = bpf_map_lookup_elem(&rare, &key);
		}
	}
	return s;
}

static __always_inline void add_syscall(long nr, bool failed, __u64 delta)
{
	__u32 key = (__u32)nr;
	struct sc_stats *s = stats_of(nr);

	if (!s)
		return;
	s->count++;
	if (failed)
		s->errors++;
	s->total_ns += delta;

	if (want_hist && delta) {
		struct sc_hist *h = bpf_map_lookup_elem(&hists, &key);
		__u64 slot = log2l(delta);

		if (slot >= SYSCOUNT_HIST_SLOTS)
			slot = SYSCOUNT_HIST_SLOTS - 1;
		if (h)
			__sync_fetch_and_add(&h->slots[slot], 1);
	}
}

static __always_inline void add_errno(long nr, long err)
{
	struct sc_errno_key key = { .nr = (__u32)nr, .err = (__u32)err };
	__u64 *n = bpf_map_lookup_elem(&errnos, &key), zero = 0;

	if (!n) {
		bpf_map_update_elem(&errnos, &key, &zero, BPF_NOEXIST);
		n = bpf_map_lookup_elem(&errnos, &key);
		if (!n)
			return; /* map full */
	}
	(*n)++;
}

/* include/linux/sched/signal.h: the same value from 2.6 to 6.x. */
#define SYSCOUNT_SIGNAL_GROUP_EXIT 0x00000004
#define SYSCOUNT_SIGKILL 9

/*
 * The thread dies on its way back to user space: a SIGKILL is pending for
 * it (kill -9, a fatal signal's group kill, another thread's exit_group or
 * execve), or its thread group is exiting. Its call never returns, so strace
 * -c, which counts returns, has no row for it: neither do we (-v and JSON
 * show it as `unfinished`). Checked at sys_exit, where every mode (-p, --
 * CMD, --cgroup, every attach path) sees the same thing.
 */
static __always_inline bool never_returns(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	unsigned long kill = 1UL << (SYSCOUNT_SIGKILL - 1);

	if (BPF_CORE_READ(task, signal, flags) & SYSCOUNT_SIGNAL_GROUP_EXIT)
		return true;
	return (BPF_CORE_READ(task, pending.signal.sig[0]) | BPF_CORE_READ(task, signal, shared_pending.signal.sig[0])) & kill;
}

static __always_inline int on_exit(long nr, long ret, enum start_store store)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 delta = 0;
	/* Errors are -4095..-1, as the kernel's IS_ERR_VALUE and strace say:
	 * some calls (fcntl F_GETOWN, ...) return other negative values. */
	bool failed = ret < 0 && ret >= -4095;

	/* -1 at exit: rt_sigreturn (see nr_rt_sigreturn), unless the call was
	 * a real syscall(-1), which fails with ENOSYS (an rt_sigreturn returns
	 * the interrupted code's register, ENOSYS only if a signal came right
	 * after a call that failed with it: rarer still). */
	if (nr == -1 && ret != -SYSCOUNT_ENOSYS)
		nr = nr_rt_sigreturn;
	if (ret == 0 && (nr == nr_clone || nr == nr_clone3 || nr == nr_fork || nr == nr_vfork))
		return 0;
	if (!wanted(id, nr))
		return 0;
	if (want_latency && store != START_NONE) {
		__u64 *start = start_slot(store, false);

		/* No start: entered before we attached, or the entry could not
		 * get the thread's slot (task storage is NULL when another storage
		 * operation holds this CPU's lock, e.g. a task exiting: a thread's
		 * last calls). Counted all the same, as count mode does; no time. */
		if (start && *start) {
			delta = bpf_ktime_get_ns() - *start;
			*start = 0;
		}
		start_done(store);
	}
	if (never_returns()) {
		struct sc_stats *s = by_process ? NULL : stats_of(nr);

		if (s)
			s->unfinished++;
		return 0;
	}
	if (only_failed && !failed)
		return 0;
	if (only_errno && ret != -only_errno)
		return 0;

	if (want_errnos && failed)
		add_errno(nr, -ret);
	if (by_process)
		add_proc(id >> 32, nr, ret, failed, delta);
	else
		add_syscall(nr, failed, delta);
	return 0;
}

/* The pt_regs field holding the syscall number at sys_exit (what the
 * tracepoint's `id` field shows: syscall_get_nr()). */
#if defined(__TARGET_ARCH_x86)
#define NR_FIELD orig_ax
#elif defined(__TARGET_ARCH_arm64)
#define NR_FIELD syscallno
#elif defined(__TARGET_ARCH_riscv)
#define NR_FIELD a7
#else
#error "syscount: no syscall-number register known for this arch"
#endif

/* ---- tp_btf path: typed pointers, pt_regs read directly ---- */
SEC("tp_btf/sys_enter")
int BPF_PROG(tb_enter, struct pt_regs *regs, long id)
{
	return on_enter(id, START_TASK);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(tb_exit, struct pt_regs *regs, long ret)
{
	return on_exit((long)regs->NR_FIELD, ret, START_TASK);
}

/* ---- raw_tp path ---- */
SEC("raw_tp/sys_enter")
int BPF_PROG(rt_enter, struct pt_regs *regs, long id)
{
	return on_enter(id, START_TASK);
}

SEC("raw_tp/sys_exit")
int BPF_PROG(rt_exit, struct pt_regs *regs, long ret)
{
	return on_exit((long)BPF_CORE_READ(regs, NR_FIELD), ret, START_TASK);
}

#include "syscount_fentry.bpf.h"

/* ---- Count mode: exit programs that touch no start map, so count mode
 * creates none (user space turns autocreate off for both). ---- */
SEC("tp_btf/sys_exit")
int BPF_PROG(tb_count, struct pt_regs *regs, long ret)
{
	return on_exit((long)regs->NR_FIELD, ret, START_NONE);
}

SEC("raw_tp/sys_exit")
int BPF_PROG(rt_count, struct pt_regs *regs, long ret)
{
	return on_exit((long)BPF_CORE_READ(regs, NR_FIELD), ret, START_NONE);
}

SEC("fexit")
int BPF_PROG(fe_count, const struct pt_regs *regs, unsigned int nr, long ret)
{
	return on_exit(nr, ret, START_NONE);
}

#include "syscount_tid_starts.bpf.h"
