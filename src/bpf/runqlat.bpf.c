// SPDX-License-Identifier: GPL-2.0
/* runqlat: run-queue (scheduler) latency, the time a runnable task waits
 * for a CPU. A task becomes runnable at its wakeup (sched_wakeup,
 * sched_wakeup_new) or when it is preempted (sched_switch with prev still
 * TASK_RUNNING); its wait ends when sched_switch switches it in. Each wait
 * goes into a log2 histogram (all, per process, per thread or per cgroup)
 * with exact sums, and with --max into a per-CPU list of the worst waits.
 *
 * Attach paths, chosen at run time by src/tools/runqlat/probe.ts:
 *   tp_btf  the sched tracepoints as BTF-typed tracepoints;
 *   raw_tp  the same as raw tracepoints (no tracefs needed).
 *
 * Filters are on the task that waits, not on `current` (the waker, or the
 * task switched out): -p and -- CMD by its tgid, --cgroup by its v2
 * cgroup's ancestor at the directory's level (the cgroup-array helper only
 * answers for current).
 */
#include "rbtrace.bpf.h"
#include "rbtrace_sched.bpf.h"
#include "bits.bpf.h"
#include "runqlat.h"

const volatile __u32 split = RQ_ALL;   /* enum rq_split */
const volatile bool in_ms = false;     /* -m */
const volatile bool want_worst = false; /* --max */
const volatile __u64 targ_cgroup_id = 0; /* --cgroup: the directory's id (inode) */
const volatile __s32 targ_cgroup_level = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);   /* tid */
	__type(value, __u64); /* enqueue time */
} starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64); /* 0, tgid, tid or cgroup id (enum rq_split) */
	__type(value, struct rql_hist);
} hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rql_worst);
} worst SEC(".maps");

RBTRACE_EXPORT_TYPE(struct rql_wait, rql_wait);

/* task->__state since 5.14, task->state before. */
/* cgroup->ancestors[] (pointers) since 6.0, ancestor_ids[] before. */
struct cgroup___old {
	int level;
	__u64 ancestor_ids[];
} __attribute__((preserve_access_index));

static __always_inline __u64 task_cgroup_id(struct task_struct *t)
{
	return BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
}

static __always_inline bool task_in_cgroup(struct task_struct *t)
{
	struct cgroup *cg = BPF_CORE_READ(t, cgroups, dfl_cgrp);
	int level = BPF_CORE_READ(cg, level);
	__u64 id;

	if (level < targ_cgroup_level)
		return false;
	if (bpf_core_field_exists(cg->ancestors)) {
		struct cgroup *anc;

		bpf_core_read(&anc, sizeof(anc), &cg->ancestors[targ_cgroup_level]);
		id = BPF_CORE_READ(anc, kn, id);
	} else {
		struct cgroup___old *old = (void *)cg;

		bpf_core_read(&id, sizeof(id), &old->ancestor_ids[targ_cgroup_level]);
	}
	return id == targ_cgroup_id;
}

static __always_inline bool task_wanted(struct task_struct *t)
{
	__u32 tgid = BPF_CORE_READ(t, tgid);

	if (rbtrace_targ_cgroup && !task_in_cgroup(t))
		return false;
	return rbtrace_tgid_wanted(tgid);
}

static __always_inline void enqueued(struct task_struct *t)
{
	__u32 tid = BPF_CORE_READ(t, pid);
	__u64 now;

	if (!tid || !task_wanted(t))
		return;
	now = bpf_ktime_get_ns();
	bpf_map_update_elem(&starts, &tid, &now, BPF_ANY);
}

static __always_inline void add_hist(struct task_struct *t, __u64 delta)
{
	__u64 key = 0, slot;
	struct rql_hist *h;

	if (split == RQ_PROCESS)
		key = BPF_CORE_READ(t, tgid);
	else if (split == RQ_THREAD)
		key = BPF_CORE_READ(t, pid);
	else if (split == RQ_CGROUP)
		key = task_cgroup_id(t);
	h = bpf_map_lookup_elem(&hists, &key);
	if (!h) {
		struct rql_hist zero = {};

		if (split == RQ_PROCESS || split == RQ_THREAD)
			BPF_CORE_READ_STR_INTO(&zero.comm, t, comm);
		bpf_map_update_elem(&hists, &key, &zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &key);
		if (!h)
			return;
	}
	slot = log2l(delta / (in_ms ? 1000000 : 1000));
	if (slot >= RQ_HIST_SLOTS)
		slot = RQ_HIST_SLOTS - 1;
	__sync_fetch_and_add(&h->slots[slot], 1);
	__sync_fetch_and_add(&h->count, 1);
	__sync_fetch_and_add(&h->total_ns, delta);
	if (delta > h->max_ns)
		h->max_ns = delta; /* a race may keep the smaller of two at once: --max's list is exact */
}

static __always_inline void add_worst(struct task_struct *prev, struct task_struct *next, __u64 delta, __u64 now)
{
	__u32 zero = 0, i, min_i = 0;
	struct rql_worst *w = bpf_map_lookup_elem(&worst, &zero);
	struct rql_wait *slot;
	__u64 min = ~0ULL;

	if (!w)
		return;
	for (i = 0; i < RQ_WORST; i++) {
		if (w->waits[i].wait_ns < min) {
			min = w->waits[i].wait_ns;
			min_i = i;
		}
	}
	if (delta <= min || min_i >= RQ_WORST)
		return;
	slot = &w->waits[min_i];
	slot->wait_ns = delta;
	slot->ts_ns = now;
	slot->pid = BPF_CORE_READ(next, pid);
	slot->tgid = BPF_CORE_READ(next, tgid);
	slot->prev_pid = BPF_CORE_READ(prev, pid);
	slot->prev_tgid = BPF_CORE_READ(prev, tgid);
	slot->cpu = bpf_get_smp_processor_id();
	BPF_CORE_READ_STR_INTO(&slot->comm, next, comm);
	BPF_CORE_READ_STR_INTO(&slot->prev_comm, prev, comm);
}

static __always_inline int on_switch(struct task_struct *prev, struct task_struct *next)
{
	__u32 tid;
	__u64 *start, now, delta;

	if (rbtrace_task_state(prev) == TASK_RUNNING)
		enqueued(prev);
	tid = BPF_CORE_READ(next, pid);
	start = bpf_map_lookup_elem(&starts, &tid);
	if (!start)
		return 0;
	now = bpf_ktime_get_ns();
	delta = now - *start;
	bpf_map_delete_elem(&starts, &tid);
	if ((__s64)delta < 0)
		return 0;
	add_hist(next, delta);
	if (want_worst)
		add_worst(prev, next, delta, now);
	return 0;
}

/* A wakeup: the woken task waits from now (both attach flavours). */
static __always_inline int on_wakeup(struct task_struct *p)
{
	enqueued(p);
	return 0;
}

/* ---- tp_btf path ---- */
SEC("tp_btf/sched_wakeup")
int BPF_PROG(tb_wakeup, struct task_struct *p)
{
	return on_wakeup(p);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(tb_wakeup_new, struct task_struct *p)
{
	return on_wakeup(p);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(tb_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(prev, next);
}

/* ---- raw_tp path ---- */
SEC("raw_tp/sched_wakeup")
int BPF_PROG(rt_wakeup, struct task_struct *p)
{
	return on_wakeup(p);
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(rt_wakeup_new, struct task_struct *p)
{
	return on_wakeup(p);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(rt_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(prev, next);
}
