// SPDX-License-Identifier: GPL-2.0
/* rubycalls: calls per Ruby method (Class#method), from libruby's USDT
 * probes: ruby:cmethod__entry/return fire for every method written in C;
 * ruby:method__entry/return for methods written in Ruby, but only while the
 * VM runs its trace instructions (some TracePoint enabled in the process:
 * Ruby bug #14582); user space reads the VM's event flags to say so.
 * Arguments of all four: class name, method name, file, line.
 *
 * Counts are kept on entry; with want_latency (-L) the returns are attached
 * too and each thread keeps a stack of entry times per kind
 * (RUBYCALLS_MAX_DEPTH deep; deeper calls are counted, not timed). A
 * TracePoint for :call alone makes method__entry fire without
 * method__return: Ruby methods are then counted, not timed.
 */
#include "rbtrace.bpf.h"
#include "bits.bpf.h"
#include <bpf/usdt.bpf.h>
#include "rubycalls.h"
#include "rbtrace_window.bpf.h"

const volatile bool by_process = false; /* -P */
const volatile bool want_latency = false; /* -L */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct rc_key);
	__type(value, struct rc_stats);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64); /* tid << 1 | kind: C calls are timed even when Ruby returns never fire */
	__type(value, struct rc_stack);
} stacks SEC(".maps");

/* All zeroes: a new thread's stack (too big for the BPF stack). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rc_stack);
} empty_stack SEC(".maps");

/* Calls not counted because `calls` was full. */
RBTRACE_PERCPU_COUNTER(dropped);

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rc_key);
} scratch SEC(".maps");

static __always_inline struct rc_key *make_key(struct pt_regs *ctx, __u32 pid, __u32 kind)
{
	__u32 zero = 0;
	struct rc_key *k = bpf_map_lookup_elem(&scratch, &zero);
	long klass, method;

	if (!k)
		return NULL;
	if (bpf_usdt_arg(ctx, 0, &klass) || bpf_usdt_arg(ctx, 1, &method))
		return NULL;
	__builtin_memset(k, 0, sizeof(*k));
	k->pid = by_process ? pid : 0;
	k->kind = kind;
	bpf_probe_read_user_str(k->klass, sizeof(k->klass), (void *)klass);
	bpf_probe_read_user_str(k->method, sizeof(k->method), (void *)method);
	return k;
}

static __always_inline int on_entry(struct pt_regs *ctx, __u32 kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 sk = ((__u64)(__u32)id << 1) | kind;
	__u32 zero = 0;
	struct rc_stats *st, fresh = {};
	struct rc_stack *s, *empty;
	struct rc_key *k;

	if (!rbtrace_wanted(id >> 32) || !rbtrace_window_open())
		return 0;
	k = make_key(ctx, id >> 32, kind);
	if (!k)
		return 0;
	st = rbtrace_lookup_or_init(&calls, k, &fresh);
	if (st)
		st->count++;
	else
		rbtrace_count(&dropped);
	if (!want_latency)
		return 0;
	empty = bpf_map_lookup_elem(&empty_stack, &zero);
	if (!empty)
		return 0;
	s = rbtrace_lookup_or_init(&stacks, &sk, empty);
	if (!s)
		return 0;
	if (s->depth < RUBYCALLS_MAX_DEPTH)
		s->ts[s->depth & (RUBYCALLS_MAX_DEPTH - 1)] = bpf_ktime_get_ns();
	s->depth++;
	return 0;
}

static __always_inline int on_return(struct pt_regs *ctx, __u32 kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 sk = ((__u64)(__u32)id << 1) | kind;
	struct rc_stats *st;
	struct rc_stack *s;
	struct rc_key *k;
	__u64 delta, slot;

	if (!rbtrace_wanted(id >> 32))
		return 0;
	s = bpf_map_lookup_elem(&stacks, &sk);
	if (!s || s->depth == 0)
		return 0; /* entered before we attached */
	s->depth--;
	if (s->depth >= RUBYCALLS_MAX_DEPTH)
		return 0;
	delta = bpf_ktime_get_ns() - s->ts[s->depth & (RUBYCALLS_MAX_DEPTH - 1)];
	k = make_key(ctx, id >> 32, kind);
	if (!k)
		return 0;
	st = bpf_map_lookup_elem(&calls, k);
	if (!st)
		return 0;
	st->timed++;
	st->total_ns += delta;
	slot = log2l(delta);
	if (slot >= RUBYCALLS_SLOTS)
		slot = RUBYCALLS_SLOTS - 1;
	st->slots[slot]++;
	return 0;
}

RBTRACE_USDT(method_entry, on_entry, RC_RUBY)
RBTRACE_USDT(method_return, on_return, RC_RUBY)
RBTRACE_USDT(cmethod_entry, on_entry, RC_C)
RBTRACE_USDT(cmethod_return, on_return, RC_C)
