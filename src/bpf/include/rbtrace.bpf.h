/* Common BPF-side helpers of every rbtrace tool.
 *
 *  - target filtering: `-p PID` (targ_tgid) and `-- CMD` (targ_follow: the
 *    spawned command and every descendant, tracked through fork/exit);
 *  - cgroup filtering: `--cgroup DIR` (targ_cgroup: only tasks in that cgroup
 *    v2 directory or below it);
 *  - lost-event accounting: ring buffers have no loss notification, so every
 *    failed reserve is counted in rbtrace_lost, which user space reports.
 *
 * User space (src/core/target.ts, src/core/bpf/ringbuf.ts) knows these names:
 * keep them in step.
 */
#ifndef RBTRACE_BPF_H
#define RBTRACE_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

/* Set before load from user space. */
const volatile __u32 rbtrace_targ_tgid = 0;    /* -p PID: only this process */
const volatile bool rbtrace_targ_follow = false; /* -- CMD: rbtrace_traced and its descendants */

/* Values of rbtrace_traced. User space (src/core/target.ts) puts the
 * command's pid in as PENDING: until its exec it is rbtrace's gate (perl
 * or bash waiting to exec the command), whose calls are not the command's. The
 * exec makes it TRACED; only TRACED processes pass their state on to the
 * children they fork. So every figure starts at the command's execve. */
#define RBTRACE_FOLLOW_TRACED 1
#define RBTRACE_FOLLOW_PENDING 2

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);   /* tgid */
	__type(value, __u8);  /* RBTRACE_FOLLOW_* */
} rbtrace_traced SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} rbtrace_lost SEC(".maps");

/* --cgroup DIR. User space puts the directory's fd in slot 0 of
 * rbtrace_cgroup (src/core/target.ts). bpf_current_task_under_cgroup() is
 * in every tracing program type since 4.9 (so on 5.10 too, unlike walking
 * cgroup ancestors by hand, whose fields changed in 6.0) and checks the v2
 * cgroup of the current task against the directory and all below it in one
 * ancestor lookup. An empty slot (the moment between attach and the map
 * update) answers < 0: not wanted. */
const volatile bool rbtrace_targ_cgroup = false;

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} rbtrace_cgroup SEC(".maps");

static __always_inline bool rbtrace_cgroup_wanted(void)
{
	return !rbtrace_targ_cgroup || bpf_current_task_under_cgroup(&rbtrace_cgroup, 0) == 1;
}

/* -- CMD: is this process the command (or a descendant) since its exec? */
static __always_inline bool rbtrace_follow_traced(__u32 tgid)
{
	__u8 *state = bpf_map_lookup_elem(&rbtrace_traced, &tgid);

	return state && *state == RBTRACE_FOLLOW_TRACED;
}

/* -- CMD: is this process the command's pid before its exec (the gate)?
 * Tools that show the exec call itself (execsnoop, syscount's execve row)
 * take its exec calls; nothing else of it is the command's. */
static __always_inline bool rbtrace_follow_pending(__u32 tgid)
{
	__u8 *state;

	if (!rbtrace_targ_follow)
		return false;
	state = bpf_map_lookup_elem(&rbtrace_traced, &tgid);
	return state && *state == RBTRACE_FOLLOW_PENDING;
}

/* Is this process one the user asked to trace? `tgid` is the current task's
 * (the cgroup check is of the current task). */
static __always_inline bool rbtrace_tgid_wanted(__u32 tgid);

static __always_inline bool rbtrace_wanted(__u32 tgid)
{
	return rbtrace_cgroup_wanted() && rbtrace_tgid_wanted(tgid);
}

/* -p and -- CMD alone, for a process that need not be current (the task a
 * sched tracepoint names); the caller checks --cgroup its own way. */
static __always_inline bool rbtrace_tgid_wanted(__u32 tgid)
{
	if (rbtrace_targ_follow)
		return rbtrace_follow_traced(tgid);
	if (rbtrace_targ_tgid)
		return tgid == rbtrace_targ_tgid;
	return true;
}

static __always_inline bool rbtrace_wanted_current(void)
{
	/* No filter: no helper call either (its result would go unused). */
	if (!rbtrace_targ_cgroup && !rbtrace_targ_follow && !rbtrace_targ_tgid)
		return true;
	return rbtrace_wanted(bpf_get_current_pid_tgid() >> 32);
}

static __always_inline void rbtrace_count_lost(void)
{
	__u32 zero = 0;
	__u64 *lost = bpf_map_lookup_elem(&rbtrace_lost, &zero);
	if (lost)
		*lost += 1; /* per-CPU: no atomic needed */
}

/* bpf_ringbuf_reserve that counts its failures. */
static __always_inline void *rbtrace_reserve(void *ringbuf, __u64 size)
{
	void *event = bpf_ringbuf_reserve(ringbuf, size, 0);
	if (!event)
		rbtrace_count_lost();
	return event;
}

/* bpf_ringbuf_output that counts its failures. */
static __always_inline long rbtrace_output(void *ringbuf, void *data, __u64 size)
{
	long err = bpf_ringbuf_output(ringbuf, data, size, 0);
	if (err)
		rbtrace_count_lost();
	return err;
}

/* Descendant tracking for `-- CMD`. Loaded only when rbtrace_targ_follow is
 * set (user space turns autoload off otherwise), so a plain run pays nothing.
 * raw_tp needs no tracefs and exists on every kernel rbtrace supports. */
SEC("raw_tp/sched_process_fork")
int BPF_PROG(rbtrace_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	__u8 traced = RBTRACE_FOLLOW_TRACED;

	if (ptgid != ctgid && rbtrace_follow_traced(ptgid))
		bpf_map_update_elem(&rbtrace_traced, &ctgid, &traced, BPF_ANY);
	return 0;
}

/* The command's exec: from here on its calls are its own. This fires inside
 * the execve, before it returns, so the execve's own return (syscount, and
 * execsnoop's syscall paths) already sees TRACED. */
SEC("raw_tp/sched_process_exec")
int BPF_PROG(rbtrace_exec, struct task_struct *task)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u8 *state = bpf_map_lookup_elem(&rbtrace_traced, &tgid);

	if (state && *state == RBTRACE_FOLLOW_PENDING)
		*state = RBTRACE_FOLLOW_TRACED;
	return 0;
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(rbtrace_exit, struct task_struct *task)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;

	/* Forget a process when its last thread (the leader) goes. User space
	 * keeps its own copy of the root pid to know when the command ends. */
	if ((__u32)id == tgid)
		bpf_map_delete_elem(&rbtrace_traced, &tgid);
	return 0;
}

/* A 64-bit struct field whose low bits matter (an address, an id, a
 * cookie): its typed skeleton decodes it as a bigint, not a number, e.g.
 * `__u64 sk RBTRACE_BIG;` (src/core/skeleton/gen.ts, docs/SDK.md). */
#define RBTRACE_BIG __attribute__((btf_decl_tag("rbtrace_big")))

/* Make sure a struct's BTF is emitted even if only user space uses it, so
 * the build can derive its layout (scripts/gen-bindings.mjs). */
#define RBTRACE_EXPORT_TYPE(type, name) type *rbtrace_export_##name __attribute__((unused))

/* A one-slot per-CPU counter, e.g. events not counted because a table was
 * full (user space sums the CPUs: readPerCpuCounter). rubycalls and
 * rubyobjnew declare theirs with it; offcputime, profile and mallocstat
 * still spell theirs out and can adopt it. */
#define RBTRACE_PERCPU_COUNTER(name)                    \
	struct {                                        \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); \
		__uint(max_entries, 1);                 \
		__type(key, __u32);                     \
		__type(value, __u64);                   \
	} name SEC(".maps")

static __always_inline void rbtrace_count(void *counter)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(counter, &zero);

	if (n)
		*n += 1;
}

/* The value at `key` in a hash map, inserted as `init` if absent; NULL
 * when the map is full (the caller counts that). */
static __always_inline void *rbtrace_lookup_or_init(void *map, const void *key, const void *init)
{
	void *v = bpf_map_lookup_elem(map, key);

	if (v)
		return v;
	bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, key);
}

/* The new-process pair of the stack tools (offcputime, profile,
 * mallocstat): `seen_pids` remembers each process (value_type: what tells
 * an exec apart, or a flag), `new_pids` sends its first sighting so user
 * space reads its mappings while it lives (profile, rbstack, offcputime). No tool of
 * this header's Ruby set (rubycalls, rubyobjnew) has one. */
#define RBTRACE_NEW_PIDS(value_type)              \
	struct {                                  \
		__uint(type, BPF_MAP_TYPE_HASH);  \
		__uint(max_entries, 65536);       \
		__type(key, __u32);               \
		__type(value, value_type);        \
	} seen_pids SEC(".maps");                 \
	struct {                                  \
		__uint(type, BPF_MAP_TYPE_RINGBUF); \
		__uint(max_entries, 64 * 1024);   \
	} new_pids SEC(".maps")

/* A USDT program that only hands its context and constant arguments to a
 * shared body: RBTRACE_USDT(string_create, on_create, RO_STRING) is
 * `SEC("usdt") int BPF_USDT(string_create) { return on_create(ctx, RO_STRING); }`
 * (include <bpf/usdt.bpf.h> first). */
#define RBTRACE_USDT(prog, body, ...)   \
	SEC("usdt")                     \
	int BPF_USDT(prog)              \
	{                               \
		return body(ctx, __VA_ARGS__); \
	}

char LICENSE[] SEC("license") = "GPL";

#endif /* RBTRACE_BPF_H */
