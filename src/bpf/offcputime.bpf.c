// SPDX-License-Identifier: GPL-2.0
/* offcputime: time threads spend blocked (off CPU, not runnable), by the
 * user and kernel stacks they blocked in. At sched_switch the task switched
 * out (current, so its stacks can be taken) is remembered with its stacks
 * when it leaves the CPU blocked; when a remembered task is switched in
 * again, the time in between is added to its (process, stacks, state, comm).
 * A preempted task (still runnable) is not blocked: its wait is runqlat's.
 *
 * Attach paths, chosen at run time by src/tools/offcputime/probe.ts:
 *   tp_btf  sched_switch as a BTF-typed tracepoint;
 *   raw_tp  the same as a raw tracepoint.
 * bpf_get_stackid works from both (the raw tracepoint's own variant).
 */
#include "rbtrace.bpf.h"
#include "rbtrace_sched.bpf.h"
#include "rbtrace_stacks.bpf.h"
#include "offcputime.h"

const volatile bool per_state = false;   /* -s */
const volatile __u64 min_ns = 1000;      /* -m (us): shorter blocks are not counted */
const volatile __u64 max_ns = ~0ULL;     /* -M (us) */
const volatile bool user_only = false;
const volatile bool kernel_only = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32); /* tid */
	__type(value, struct offcpu_start);
} starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, OFFCPU_MAX_KEYS);
	__type(key, struct offcpu_key);
	__type(value, struct offcpu_val);
} counts SEC(".maps");

/* Blocks not counted: `counts` full. Per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

/* Blocks whose end was never seen: a task switched out again (so it ran)
 * while its start was still kept. The kernel switched it in without this
 * tracepoint reaching BPF (bpftrace's sched_switch program misses the same
 * switch-ins). Such a block is not counted, its start is dropped. Per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} unpaired SEC(".maps");

/* A process's first block, and its first after an exec, is sent here, so
 * user space reads its mappings while it is alive (it may be gone at the
 * end), as profile does. The value is the process's mm: an exec changes it. */
RBTRACE_NEW_PIDS(__u64);

RBTRACE_EXPORT_TYPE(struct offcpu_key, offcpu_key);
RBTRACE_EXPORT_TYPE(struct offcpu_val, offcpu_val);
RBTRACE_EXPORT_TYPE(struct offcpu_start, offcpu_start);

static __always_inline __u32 state_of(long state)
{
	if (!per_state)
		return OFFCPU_ANY;
	if (state & TASK_UNINTERRUPTIBLE)
		return OFFCPU_UNINTERRUPTIBLE;
	if (state & TASK_INTERRUPTIBLE)
		return OFFCPU_SLEEPING;
	return OFFCPU_OTHER;
}

static __always_inline void note_pid(struct task_struct *t, __u32 tgid)
{
	__u64 mm = (__u64)BPF_CORE_READ(t, mm), *seen = bpf_map_lookup_elem(&seen_pids, &tgid);

	if (!seen || *seen != mm) {
		bpf_map_update_elem(&seen_pids, &tgid, &mm, BPF_ANY);
		__u32 *e = rbtrace_reserve(&new_pids, sizeof(*e));
		if (e) {
			*e = tgid;
			bpf_ringbuf_submit(e, 0);
		}
	}
}

static __always_inline void add(struct task_struct *t, struct offcpu_start *s, __u64 delta)
{
	struct offcpu_key key = {};
	struct offcpu_val *v, zero = {};
	__u32 z = 0;
	__u64 *n;

	key.tgid = BPF_CORE_READ(t, tgid);
	key.state = s->state;
	key.user_stack = s->user_stack;
	key.kernel_stack = s->kernel_stack;
	BPF_CORE_READ_STR_INTO(&key.comm, t, comm);
	v = bpf_map_lookup_elem(&counts, &key);
	if (!v) {
		bpf_map_update_elem(&counts, &key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&counts, &key);
		if (!v) {
			n = bpf_map_lookup_elem(&dropped, &z);
			if (n)
				*n += 1;
			return;
		}
	}
	__sync_fetch_and_add(&v->total_ns, delta);
	__sync_fetch_and_add(&v->count, 1);
}

static __always_inline int on_switch(void *ctx, struct task_struct *prev, struct task_struct *next)
{
	long state = rbtrace_task_state(prev);
	__u32 tid = BPF_CORE_READ(prev, pid), tgid = BPF_CORE_READ(prev, tgid);
	struct offcpu_start *s;
	__u64 now = bpf_ktime_get_ns(), delta;

	if (tid && rbtrace_wanted(tgid)) {
		struct offcpu_start st = { .ts_ns = now, .state = state_of(state) };
		__u32 z = 0;
		__u64 *n;

		/* prev has been running: a start it still has is a block whose
		 * switch-in was not seen. */
		if (bpf_map_lookup_elem(&starts, &tid)) {
			n = bpf_map_lookup_elem(&unpaired, &z);
			if (n)
				*n += 1;
			if (state == 0)
				bpf_map_delete_elem(&starts, &tid);
		}
		if (state == 0) /* preempted, still runnable: not blocked */
			goto next;
		/* prev is current: its stacks are the ones it blocked in. */
		st.user_stack = kernel_only ? RBTRACE_STACK_NONE : rbtrace_stack_id(ctx, BPF_F_USER_STACK);
		st.kernel_stack = user_only ? RBTRACE_STACK_NONE : rbtrace_stack_id(ctx, 0);
		bpf_map_update_elem(&starts, &tid, &st, BPF_ANY);
		note_pid(prev, tgid);
	}
next:
	tid = BPF_CORE_READ(next, pid);
	s = bpf_map_lookup_elem(&starts, &tid);
	if (!s)
		return 0;
	delta = now - s->ts_ns;
	if (delta >= min_ns && delta <= max_ns)
		add(next, s, delta);
	bpf_map_delete_elem(&starts, &tid);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(tb_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(ctx, prev, next);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(rt_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(ctx, prev, next);
}
