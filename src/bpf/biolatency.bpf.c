// SPDX-License-Identifier: GPL-2.0
/* biolatency: block I/O latency, from the block layer's request tracepoints.
 * A request's start is kept in `starts` (keyed by its address) when it is
 * inserted (-Q) or issued to the driver; at its completion the latency goes
 * into a log2 histogram per (disk, operation) as the options split them, or
 * (--events, biosnoop) into one ring-buffer record per request.
 *
 * Attach paths, chosen at run time by src/tools/biolatency/probe.ts:
 *   tp_btf  block_rq_insert/issue/complete as BTF-typed tracepoints;
 *   raw_tp  the same tracepoints as raw tracepoints (no tracefs needed).
 * No kprobe path: the tracepoints exist on every kernel rbtrace supports,
 * and bcc's kprobes (blk_account_io_start/done) were inlined away in 5.16+.
 * block_rq_insert is only loaded with -Q (queued time).
 *
 * Before 5.11, block_rq_insert and block_rq_issue took (q, rq): user space
 * sets rq_second_arg there, and the verifier prunes the other read.
 *
 * Which task: the one current when the request is first seen (insert with
 * -Q, else issue). For direct and synchronous I/O that is the process doing
 * it; writeback and I/O the block layer dispatches later (a kworker) are the
 * kworker's, as in bcc's biosnoop. -p, -- CMD and --cgroup filter on it.
 */
#include "rbtrace.bpf.h"
#include "bits.bpf.h"
#include "biolatency.h"

const volatile bool rq_second_arg = false; /* kernels before 5.11 */
const volatile bool per_disk = false;      /* -D */
const volatile bool per_op = false;        /* -F */
const volatile bool queued = false;        /* -Q: from insert, not issue */
const volatile bool in_ms = false;         /* -m: slots in milliseconds */
const volatile bool want_events = false;   /* --events */
const volatile __u32 targ_dev = 0;         /* --disk: only this disk (0: all) */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH); /* a request freed unseen (merged) leaves its entry: LRU drops it */
	__uint(max_entries, BIO_MAX_INFLIGHT);
	__type(key, __u64); /* struct request * */
	__type(value, struct bio_start);
} starts SEC(".maps");

/* Per CPU: a completion adds to its own CPU's copy, a cache line no other
 * CPU writes; user space sums the copies. Not
 * preallocated: a copy per CPU of each (disk, op) seen, not of 1024. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bio_hist_key);
	__type(value, struct bio_hist);
} hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bio_counts);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024); /* user space sets 1 page without --events */
} events SEC(".maps");

RBTRACE_EXPORT_TYPE(struct bio_event, bio_event);
RBTRACE_EXPORT_TYPE(struct bio_start, bio_start);

/* rq->rq_disk before 5.17; rq->q->disk since. */
struct request___old {
	struct gendisk *rq_disk;
} __attribute__((preserve_access_index));

/* The request's fields are read directly on the tp_btf path (typed
 * pointers: a load each) and with bpf_probe_read_kernel on raw_tp (plain
 * numbers to the verifier: a helper call each). `btf` is a constant at each
 * call, so each program keeps one of the two. */
static __always_inline struct gendisk *rq_disk(struct request *rq, bool btf)
{
	struct request___old *old = (void *)rq;

	if (bpf_core_field_exists(old->rq_disk))
		return btf ? old->rq_disk : BPF_CORE_READ(old, rq_disk);
	return btf ? rq->q->disk : BPF_CORE_READ(rq, q, disk);
}

static __always_inline __u32 disk_dev(struct request *rq, bool btf)
{
	struct gendisk *disk = rq_disk(rq, btf);

	if (!disk)
		return 0;
	if (btf)
		return ((__u32)disk->major << 20) | (__u32)disk->first_minor;
	return ((__u32)BPF_CORE_READ(disk, major) << 20) | (__u32)BPF_CORE_READ(disk, first_minor);
}

static __always_inline __u32 rq_op(struct request *rq, bool btf)
{
	return (btf ? rq->cmd_flags : BPF_CORE_READ(rq, cmd_flags)) & 0xff;
}

static __always_inline struct request *rq_of(__u64 *ctx)
{
	/* A branch the verifier prunes by the constant, never one load at a
	 * computed offset: 5.10's verifier refuses a ctx pointer moved by a
	 * variable ("dereference of modified ctx ptr"), so the empty asm keeps
	 * clang from turning the branch into a select of the offset. */
	if (rq_second_arg) {
		__u64 rq = ctx[1];
		asm volatile("" : "+r"(rq));
		return (struct request *)rq;
	}
	return (struct request *)ctx[0];
}

static __always_inline int on_start(struct request *rq, bool insert, bool btf)
{
	__u64 key = (__u64)rq;
	struct bio_start *s, fresh = {};

	/* Without -Q, --events or a filter, a request seen again (issued again
	 * after a requeue) needs only its issue time replaced, which a fresh
	 * entry does: no lookup first. Otherwise the entry keeps the insert
	 * time, the task it was first seen in, and the filter's first answer. */
	if (queued || want_events || targ_dev || rbtrace_targ_tgid || rbtrace_targ_follow || rbtrace_targ_cgroup) {
		s = bpf_map_lookup_elem(&starts, &key);
		if (s && !insert) { /* inserted earlier (-Q), or issued again after a requeue */
			s->issue_ns = bpf_ktime_get_ns();
			return 0;
		}
	}
	if (targ_dev && disk_dev(rq, btf) != targ_dev)
		return 0;
	if (!rbtrace_wanted_current())
		return 0;
	if (insert)
		fresh.insert_ns = bpf_ktime_get_ns();
	else
		fresh.issue_ns = bpf_ktime_get_ns();
	if (want_events) { /* only biosnoop's lines name the task */
		fresh.pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(fresh.comm, sizeof(fresh.comm));
	}
	bpf_map_update_elem(&starts, &key, &fresh, BPF_ANY);
	return 0;
}

static __always_inline void count_untracked(void)
{
	__u32 zero = 0;
	struct bio_counts *c = bpf_map_lookup_elem(&counts, &zero);

	if (c)
		c->untracked++;
}

static __always_inline void add_hist(__u32 dev, __u32 op, __u64 delta, __u32 bytes)
{
	struct bio_hist_key key = { .dev = dev, .op = op };
	struct bio_hist *h = bpf_map_lookup_elem(&hists, &key);
	__u64 slot;

	if (!h) {
		struct bio_hist zero = {};

		bpf_map_update_elem(&hists, &key, &zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &key);
		if (!h)
			return;
	}
	slot = log2l(delta / (in_ms ? 1000000 : 1000));
	if (slot >= BIO_HIST_SLOTS)
		slot = BIO_HIST_SLOTS - 1;
	/* Atomic even on this CPU's copy: a completion in an interrupt may run
	 * inside one in a task on the same CPU (older kernels run raw_tp
	 * programs without a recursion guard); the line is not shared, so the
	 * locked add stays cheap. */
	__sync_fetch_and_add(&h->slots[slot], 1);
	__sync_fetch_and_add(&h->count, 1);
	__sync_fetch_and_add(&h->total_ns, delta);
	__sync_fetch_and_add(&h->bytes, bytes);
}

static __always_inline int on_complete(struct request *rq, int error, unsigned int nr_bytes, bool btf)
{
	__u64 key = (__u64)rq, now = bpf_ktime_get_ns(), from, delta;
	struct bio_start *s = bpf_map_lookup_elem(&starts, &key);

	if (!s) {
		count_untracked();
		return 0;
	}
	if (!s->issue_ns) /* completed without being issued (a failed insert): not device time */
		goto done;
	from = queued && s->insert_ns ? s->insert_ns : s->issue_ns;
	delta = now - from;

	if (want_events) {
		struct bio_event *e = rbtrace_reserve(&events, sizeof(*e));

		if (e) {
			e->ts_ns = now;
			e->latency_ns = delta;
			e->queued_ns = s->insert_ns ? s->issue_ns - s->insert_ns : 0;
			e->sector = btf ? rq->__sector : BPF_CORE_READ(rq, __sector);
			e->bytes = nr_bytes;
			e->dev = disk_dev(rq, btf);
			e->op = rq_op(rq, btf);
			e->pid = s->pid;
			e->error = error;
			__builtin_memcpy(e->comm, s->comm, sizeof(e->comm));
			bpf_ringbuf_submit(e, 0);
		}
	} else {
		/* The disk and operation are read only when -D or -F split by them. */
		add_hist(per_disk ? disk_dev(rq, btf) : 0, per_op ? rq_op(rq, btf) : 0, delta, nr_bytes);
	}
done:
	bpf_map_delete_elem(&starts, &key);
	return 0;
}

/* ---- tp_btf path ---- */
SEC("tp_btf/block_rq_insert")
int tb_insert(__u64 *ctx)
{
	return on_start(rq_of(ctx), true, true);
}

SEC("tp_btf/block_rq_issue")
int tb_issue(__u64 *ctx)
{
	return on_start(rq_of(ctx), false, true);
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(tb_complete, struct request *rq, int error, unsigned int nr_bytes)
{
	return on_complete(rq, error, nr_bytes, true);
}

/* ---- raw_tp path ---- */
SEC("raw_tp/block_rq_insert")
int rt_insert(__u64 *ctx)
{
	return on_start(rq_of(ctx), true, false);
}

SEC("raw_tp/block_rq_issue")
int rt_issue(__u64 *ctx)
{
	return on_start(rq_of(ctx), false, false);
}

SEC("raw_tp/block_rq_complete")
int BPF_PROG(rt_complete, struct request *rq, int error, unsigned int nr_bytes)
{
	return on_complete(rq, error, nr_bytes, false);
}
