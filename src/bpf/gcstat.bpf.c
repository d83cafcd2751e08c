// SPDX-License-Identifier: GPL-2.0
/* gcstat: Ruby GC phase durations from the USDT probes of libruby
 * (ruby:gc__mark__begin/end, ruby:gc__sweep__begin/end; a ruby built with
 * --enable-dtrace). The probes are guarded by semaphores, which libbpf's
 * USDT attach raises through the kernel's uprobe ref counter, so Ruby only
 * pays for them while we are attached.
 *
 * Attach path: usdt only (user-space probes). A begin stores the time per
 * thread and phase; the end adds the duration to per-process stats (drained
 * every interval) and to a log2 histogram per phase (printed at exit).
 *
 * With want_steps, each end also sends the step to `steps` with the VM's
 * own numbering of the collection and its reason, read from the process's
 * memory as rbspy reads stacks: ruby_current_vm_ptr -> vm->objspace ->
 * objspace->profile.{count,latest_gc_info}. The offsets come from user
 * space (src/tools/gcstat/layout.ts) per Ruby version, in `layouts` at the
 * index each file's probes carry as their USDT cookie; the library's load
 * address is the probe's address minus its link-time address (page-aligned,
 * so the rounding absorbs an ip reported one byte past the breakpoint).
 */
#include "rbtrace.bpf.h"
#include "bits.bpf.h"
#include <bpf/usdt.bpf.h>
#include "gcstat.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* tid << 1 | phase */
	__type(value, __u64);
} starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct gc_key);
	__type(value, struct gc_stat);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GC_PHASES);
	__type(key, __u32);
	__type(value, struct gc_hist);
} hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024); /* a step is 56 bytes; collections are ms apart */
} steps SEC(".maps");

RBTRACE_EXPORT_TYPE(struct gc_step, gc_step);

const volatile bool want_steps = false;

/* Per USDT cookie (0: none, the layout unknown), the layout of that file's Ruby. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GCSTAT_LAYOUTS);
	__type(key, __u32);
	__type(value, struct gc_layout);
} layouts SEC(".maps");

RBTRACE_EXPORT_TYPE(struct gc_layout, gc_layout);

/* The VM's collection number and reason, read at the end probe of `phase`. */
static __always_inline bool read_vm(struct pt_regs *ctx, __u32 phase, struct gc_step *e)
{
	__u32 id = bpf_usdt_cookie(ctx);
	struct gc_layout *l;
	__u64 bias, vaddr, vm = 0, objspace = 0;

	l = id ? bpf_map_lookup_elem(&layouts, &id) : NULL;
	if (!l || !l->vm_ptr_vaddr)
		return false;
	vaddr = phase == GC_MARK ? l->mark_end_vaddr : l->sweep_end_vaddr;
	if (!vaddr)
		return false;
	bias = (PT_REGS_IP(ctx) - vaddr) & ~0xfffULL;
	if (bpf_probe_read_user(&vm, sizeof(vm), (void *)(l->vm_ptr_vaddr + bias)) || !vm)
		return false;
	if (bpf_probe_read_user(&objspace, sizeof(objspace), (void *)(vm + l->off_vm_objspace)) || !objspace)
		return false;
	if (bpf_probe_read_user(&e->gc_count, sizeof(e->gc_count), (void *)(objspace + l->off_gc_count)))
		return false;
	if (bpf_probe_read_user(&e->info, sizeof(e->info), (void *)(objspace + l->off_gc_info)))
		return false;
	return true;
}

static __always_inline void send_step(struct pt_regs *ctx, __u32 phase, __u64 start, __u64 delta)
{
	struct gc_step *e;

	e = rbtrace_reserve(&steps, sizeof(*e));
	if (!e)
		return;
	e->start_ns = start;
	e->dur_ns = delta;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->phase = phase;
	e->gc_count = 0;
	e->info = 0;
	e->vm_ok = read_vm(ctx, phase, e);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
}

static __always_inline int phase_begin(__u32 phase)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 key = ((__u64)(__u32)id << 1) | phase;
	__u64 ts;

	if (!rbtrace_wanted(id >> 32))
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&starts, &key, &ts, BPF_ANY);
	return 0;
}

static __always_inline int phase_end(struct pt_regs *ctx, __u32 phase)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 key = ((__u64)(__u32)id << 1) | phase;
	struct gc_key sk = { .pid = id >> 32, .phase = phase };
	struct gc_stat *st, zero = {};
	struct gc_hist *h;
	__u64 *start, delta, slot, began;

	if (!rbtrace_wanted(id >> 32))
		return 0;
	start = bpf_map_lookup_elem(&starts, &key);
	if (!start)
		return 0; /* began before we attached */
	began = *start;
	delta = bpf_ktime_get_ns() - began;
	bpf_map_delete_elem(&starts, &key);
	if (want_steps)
		send_step(ctx, phase, began, delta);

	st = bpf_map_lookup_elem(&stats, &sk);
	if (!st) {
		bpf_get_current_comm(zero.comm, sizeof(zero.comm));
		bpf_map_update_elem(&stats, &sk, &zero, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&stats, &sk);
		if (!st)
			return 0;
	}
	__sync_fetch_and_add(&st->count, 1);
	__sync_fetch_and_add(&st->total_ns, delta);
	if (delta > st->max_ns)
		st->max_ns = delta; /* racy only between threads of one process, which Ruby's GVL serialises */

	h = bpf_map_lookup_elem(&hists, &phase);
	if (h) {
		slot = log2l(delta / 1000); /* usecs: GC phases take µs to ms */
		if (slot >= GCSTAT_SLOTS)
			slot = GCSTAT_SLOTS - 1;
		h->slots[slot]++;
	}
	return 0;
}

SEC("usdt")
int BPF_USDT(gc_mark_begin)
{
	return phase_begin(GC_MARK);
}

SEC("usdt")
int BPF_USDT(gc_mark_end)
{
	return phase_end(ctx, GC_MARK);
}

SEC("usdt")
int BPF_USDT(gc_sweep_begin)
{
	return phase_begin(GC_SWEEP);
}

SEC("usdt")
int BPF_USDT(gc_sweep_end)
{
	return phase_end(ctx, GC_SWEEP);
}
