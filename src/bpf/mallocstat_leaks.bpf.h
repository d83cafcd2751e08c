/* mallocstat --leaks: the live-block maps and what fills them, included
 * by mallocstat.bpf.c (after its `active` map; `leaks` is its .rodata flag).
 * See mallocstat.bpf.c for the rules (which calls are the program's).
 */
#ifndef MALLOCSTAT_LEAKS_BPF_H
#define MALLOCSTAT_LEAKS_BPF_H

#include "rbtrace_stacks.bpf.h"
#include "rbtrace_ustack.bpf.h"

/* --leaks: allocations not freed yet. Sized by --max-allocs before load;
 * not preallocated, so memory follows what is live. A full map refuses new
 * blocks: counted in `dropped` and reported. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1000000);
	__type(key, struct ms_live_key);
	__type(value, struct ms_live);
} live SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

/* --leaks: processes seen allocating. Blocks older than a process's exec
 * went with the old image: not leaks. The first allocation of a process (and
 * the first after an exec) is told to user space (ms_events), which reads its
 * mappings then, while it runs, to name its frames later. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct ms_proc);
} procs SEC(".maps");

/* --leaks: (pid, stack id) pairs whose frames were sent as build ids. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ms_live_key);
	__type(value, __u8);
} stacks_sent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} ms_events SEC(".maps");

/* --leaks --unwind dwarf (user space sizes it to a page without). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, MS_COPIES_RING);
} ms_copies SEC(".maps");

RBTRACE_EXPORT_TYPE(struct ms_pid_event, ms_pid_event);
RBTRACE_EXPORT_TYPE(struct ms_alloc_copy, ms_alloc_copy);
RBTRACE_EXPORT_TYPE(struct ms_stack_event, ms_stack_event);

static __always_inline void live_delete(__u32 tgid, __u64 ptr)
{
	struct ms_live_key key = { .pid = tgid, .addr = ptr };

	bpf_map_delete_elem(&live, &key);
}

static __always_inline void count_dropped(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&dropped, &zero);

	if (n)
		*n += 1; /* per-CPU: no atomic needed */
}

/* --leaks: the first allocation of a process is told to user space. */
static __always_inline void note_process(__u32 tgid)
{
	struct ms_proc *p = bpf_map_lookup_elem(&procs, &tgid);

	if (p) {
		if (p->announced)
			return;
		p->announced = 1; /* the first allocation since its exec */
	} else {
		struct ms_proc first = { .announced = 1 };
		if (bpf_map_update_elem(&procs, &tgid, &first, BPF_NOEXIST))
			return;
	}
	struct ms_pid_event ev = { .kind = MS_EV_PROCESS, .pid = tgid };
	rbtrace_output(&ms_events, &ev, sizeof(ev));
}

/* --leaks: the first time a process allocates from a stack, its frames as
 * (build id, file offset) too. The kernel resolves them now, while the
 * mappings exist (the stack map keeps only addresses); once per stack, so
 * the per-call cost stays one hash lookup. */
static __always_inline void send_stack(void *ctx, __u32 tgid, __s32 stackid)
{
	struct ms_live_key key = { .pid = tgid, .addr = (__u32)stackid };
	__u8 one = 1;
	struct ms_stack_event *ev;
	long n;

	if (stackid < 0 || bpf_map_lookup_elem(&stacks_sent, &key))
		return;
	if (bpf_map_update_elem(&stacks_sent, &key, &one, BPF_NOEXIST))
		return; /* full, or another CPU is sending it */
	ev = rbtrace_reserve(&ms_events, sizeof(*ev));
	if (!ev) {
		bpf_map_delete_elem(&stacks_sent, &key); /* try again next time */
		return;
	}
	ev->kind = MS_EV_STACK;
	ev->pid = tgid;
	ev->stackid = stackid;
	n = bpf_get_stack(ctx, ev->frames, sizeof(ev->frames), BPF_F_USER_STACK | BPF_F_USER_BUILD_ID);
	ev->nframes = n > 0 ? n / sizeof(ev->frames[0]) : 0;
	bpf_ringbuf_submit(ev, 0);
}

/* --leaks --unwind dwarf: the block and a copy of the caller's stack; its
 * stack id: MS_STACK_COPIED, or RBTRACE_STACK_LOST when the ring buffer is full. */
static __always_inline __s32 send_copy(struct pt_regs *regs, __u32 tgid, __u64 addr)
{
	struct ms_alloc_copy *c = bpf_ringbuf_reserve(&ms_copies, sizeof(*c), 0);
	bool fault;

	if (!c)
		return rbtrace_stack_lost(); /* said as stacks not kept, like a full stack map */
	c->pid = tgid;
	c->addr = addr;
	c->ip = PT_REGS_IP(regs);
	c->sp = PT_REGS_SP(regs);
	c->bp = PT_REGS_FP(regs);
	c->lr = rbtrace_user_lr(regs);
	c->stack_len = rbtrace_copy_user_stack(c->stack, c->sp, &fault);
	bpf_ringbuf_submit(c, 0);
	return MS_STACK_COPIED;
}

/* --leaks: the return of the program's allocator call `a`, returning `rc`. */
static __always_inline void on_alloc_return(void *ctx, __u32 tgid, struct ms_active *a, __u64 rc)
{
	struct ms_live_key key = { .pid = tgid };
	__u32 func = a->func;

	if (func == MS_FREE)
		return;
	if (func == MS_POSIX_MEMALIGN) {
		/* int posix_memalign(void **memptr, ...): 0 and the block in *memptr */
		if ((int)rc != 0 || bpf_probe_read_user(&key.addr, sizeof(key.addr), (void *)a->ptr))
			return;
	} else {
		key.addr = rc;
	}
	if (!key.addr) {
		/* realloc failed (the old block stays) unless it was asked for 0
		 * bytes (glibc then frees the old block and returns NULL). */
		if (a->had_old && a->size != 0) {
			key.addr = a->ptr;
			if (bpf_map_update_elem(&live, &key, &a->old, BPF_ANY))
				count_dropped();
		}
		return;
	}
	struct ms_live v = { .size = a->size, .ts_ns = bpf_ktime_get_ns() };
	v.stackid = leak_copies ? send_copy(ctx, tgid, key.addr) : rbtrace_stack_id(ctx, BPF_F_USER_STACK);
	/* BPF_ANY: a block of this address still here was freed where no probe saw it. */
	if (bpf_map_update_elem(&live, &key, &v, BPF_ANY))
		count_dropped();
	note_process(tgid);
	if (!leak_copies)
		send_stack(ctx, tgid, v.stackid);
}

/* --leaks: a process's blocks from before its exec went with the old image. */
SEC("raw_tp/sched_process_exec")
int BPF_PROG(ms_exec, struct task_struct *task)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 now = bpf_ktime_get_ns();
	struct ms_proc *p = bpf_map_lookup_elem(&procs, &tgid);

	if (p) {
		p->exec_ns = now;
		p->announced = 0;
	}
	return 0;
}

#endif /* MALLOCSTAT_LEAKS_BPF_H */
