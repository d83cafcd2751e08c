// SPDX-License-Identifier: GPL-2.0
/* rubyobjnew: Ruby allocations by class and by allocation site, from
 * libruby's USDT probes (object__create, string__create, array__create,
 * hash__create, symbol__create; arguments: class name or length, file,
 * line). With sample_every > 1 each allocation is looked at with
 * probability 1/N (bpf_get_prandom_u32): the probes fire on every allocation.
 * A random draw, not every Nth event: allocations come in periodic patterns
 * (Array.new fires object__create then array__create for one object), and
 * every Nth event would see only one of them.
 */
#include "rbtrace.bpf.h"
#include <bpf/usdt.bpf.h>
#include "rubyobjnew.h"
#include "rbtrace_window.bpf.h"

const volatile bool by_process = false; /* -P */
const volatile bool by_site = false;    /* --site */
const volatile __u32 sample_every = 1;  /* --sample N */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ro_key);
	__type(value, struct ro_stats);
} allocs SEC(".maps");

/* Allocations not counted: `allocs` full. */
RBTRACE_PERCPU_COUNTER(dropped);

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ro_key);
} scratch SEC(".maps");

static __always_inline int on_create(struct pt_regs *ctx, __u32 kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 zero = 0;
	struct ro_stats *st, fresh = {};
	struct ro_key *k;
	long arg0 = 0, file = 0, line = 0;

	if (!rbtrace_wanted(id >> 32) || !rbtrace_window_open())
		return 0;
	if (sample_every > 1 && bpf_get_prandom_u32() % sample_every)
		return 0;
	k = bpf_map_lookup_elem(&scratch, &zero);
	if (!k)
		return 0;
	__builtin_memset(k, 0, sizeof(*k));
	k->pid = by_process ? id >> 32 : 0;
	k->kind = kind;
	bpf_usdt_arg(ctx, 0, &arg0);
	if (kind == RO_OBJECT)
		bpf_probe_read_user_str(k->klass, sizeof(k->klass), (void *)arg0);
	if (by_site) {
		bpf_usdt_arg(ctx, 1, &file);
		bpf_usdt_arg(ctx, 2, &line);
		if (file)
			bpf_probe_read_user_str(k->file, sizeof(k->file), (void *)file);
		k->line = line;
	}
	st = rbtrace_lookup_or_init(&allocs, k, &fresh);
	if (!st) {
		rbtrace_count(&dropped);
		return 0;
	}
	st->count++;
	if (kind == RO_STRING || kind == RO_ARRAY || kind == RO_HASH)
		st->length += arg0;
	return 0;
}

RBTRACE_USDT(object_create, on_create, RO_OBJECT)
RBTRACE_USDT(string_create, on_create, RO_STRING)
RBTRACE_USDT(array_create, on_create, RO_ARRAY)
RBTRACE_USDT(hash_create, on_create, RO_HASH)
RBTRACE_USDT(symbol_create, on_create, RO_SYMBOL)
