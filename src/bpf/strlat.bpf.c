// SPDX-License-Identifier: GPL-2.0
/* strlat: latency of functions: user-space ones (default Ruby's
 * rb_str_new) through a uprobe on their entry and a uretprobe on their
 * return, or a kernel function (--kfunc) through fentry/fexit, else a
 * kprobe/kretprobe.
 *
 * Attach paths: user functions have only uprobe + uretprobe; user space
 * resolves the symbol (raw or demangled) to a file offset itself
 * (src/core/elf/elf.ts). Several functions at once (--func a,b or a glob): one
 * uprobe pair per function, the entry program told which one by its BPF
 * cookie (5.15+); a single function needs no cookie (5.10 works).
 *
 * Each thread keeps a stack of start times (LRU hash by pid_tgid), so
 * recursion, threads and functions calling each other pair entries with
 * their own returns. For user functions the stack pointer at entry is kept
 * too: at the return it must be the entry's plus the return address (x86)
 * or equal (arm64). Frames below it were skipped by longjmp (Ruby raises
 * that way) and are dropped; a frame above it means this return's entry was
 * not recorded (stack full, or before attach). Kernel functions return in
 * strict LIFO order (no longjmp), so their frames just pop.
 */
#include "rbtrace.bpf.h"
#include "bits.bpf.h"
#include "rbtrace_stacks.bpf.h"
#include "rbtrace_ustack.bpf.h"
#include "strlat.h"

/* Kept in the BPF side only (user space never reads the stacks). */
/* One call in flight: when it started, the stack pointer at entry (user
 * functions: pairs it with its return even when longjmp skipped frames),
 * and which of the traced functions it is. */
struct strlat_frame {
	__u64 ts;
	__u64 sp;
	__u32 func;
	__u32 pad;
};

struct strlat_stack {
	__u32 depth;
	__u32 pad;
	struct strlat_frame f[STRLAT_MAX_DEPTH];
};


const volatile __u64 unit_div = 1; /* ns per displayed unit: 1, 1000, 1000000 */
const volatile __u32 size_arg = 0; /* --size: 1-based argument index, 0: off */
const volatile bool want_stacks = false; /* --stack */
const volatile bool want_copies = false; /* --stack --unwind dwarf: a stack copy per call, not stack ids */

#if defined(__TARGET_ARCH_x86)
#define RET_SP_ADJ 8 /* ret popped the return address */
#else
#define RET_SP_ADJ 0
#endif

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct strlat_stack);
} stacks SEC(".maps");

/* By function (user space sizes these maps to the functions traced). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STRLAT_MAX_FUNCS);
	__type(key, __u32);
	__type(value, struct strlat_stats);
} stats SEC(".maps");

/* Max per interval: user space reads and zeroes it (a max cannot be diffed). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STRLAT_MAX_FUNCS);
	__type(key, __u32);
	__type(value, struct strlat_max);
} max_ns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STRLAT_MAX_FUNCS * STRLAT_HIST_KINDS);
	__type(key, __u32);
	__type(value, struct strlat_hist);
} hists SEC(".maps");

/* --stack: sized to 1 entry by user space without it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STRLAT_STACK_KEYS);
	__type(key, struct strlat_stack_key);
	__type(value, struct strlat_stack_val);
} stack_lat SEC(".maps");

/* --stack --unwind dwarf: struct strlat_call records (user space sizes it
 * to one page without). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, STRLAT_CALLS_RING);
} calls SEC(".maps");

RBTRACE_EXPORT_TYPE(struct strlat_call, strlat_call);

static const struct strlat_stack empty_stack;

static __always_inline void hist_add(__u32 func, __u32 kind, __u64 v)
{
	__u32 key = func * STRLAT_HIST_KINDS + kind;
	struct strlat_hist *h = bpf_map_lookup_elem(&hists, &key);
	__u64 slot = log2l(v);

	if (!h)
		return;
	if (slot >= STRLAT_SLOTS)
		slot = STRLAT_SLOTS - 1;
	h->slots[slot]++;
}

static __always_inline struct strlat_stats *get_stats(__u32 func)
{
	return bpf_map_lookup_elem(&stats, &func);
}

/* _CORE reads (bpf_probe_read_kernel): clang merges the switch into one
 * ctx load at a variable offset, which the verifier refuses for ctx. */
static __always_inline __u64 size_argument(struct pt_regs *ctx)
{
	switch (size_arg) {
	case 1: return PT_REGS_PARM1_CORE(ctx);
	case 2: return PT_REGS_PARM2_CORE(ctx);
	case 3: return PT_REGS_PARM3_CORE(ctx);
	case 4: return PT_REGS_PARM4_CORE(ctx);
	case 5: return PT_REGS_PARM5_CORE(ctx);
	default: return 0;
	}
}

/* A call of function `func` starts: push its frame. */
static __always_inline int enter(__u32 func, __u64 sp)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct strlat_stack *st;
	struct strlat_stats *s;
	__u32 d;

	if (!rbtrace_wanted(id >> 32))
		return 0;
	st = bpf_map_lookup_elem(&stacks, &id);
	if (!st) {
		bpf_map_update_elem(&stacks, &id, &empty_stack, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&stacks, &id);
		if (!st)
			return 0;
	}
	d = st->depth;
	if (d >= STRLAT_MAX_DEPTH) {
		s = get_stats(func);
		if (s)
			s->dropped++;
		return 0;
	}
	st->f[d & (STRLAT_MAX_DEPTH - 1)].sp = sp;
	st->f[d & (STRLAT_MAX_DEPTH - 1)].func = func;
	st->f[d & (STRLAT_MAX_DEPTH - 1)].ts = bpf_ktime_get_ns();
	st->depth = d + 1;
	return 0;
}

/* --stack: the call's latency under the stack that made it. Taken at the
 * return: a uretprobe sees the caller's own frame (at the entry the
 * frame-pointer walk skips the immediate caller), fexit/kretprobe the
 * kernel callers and the user code that entered the kernel. */
static __always_inline void record_stack(void *ctx, __u32 func, __u64 delta, bool kernel, struct strlat_stats *s)
{
	struct strlat_stack_key key = { .func = func, .tgid = bpf_get_current_pid_tgid() >> 32 };
	struct strlat_stack_val *v, zero = {};

	rbtrace_stack_ids(ctx, &key.ustack, kernel ? &key.kstack : NULL);
	if (!kernel)
		key.kstack = RBTRACE_STACK_NONE;
	v = bpf_map_lookup_elem(&stack_lat, &key);
	if (!v) {
		bpf_map_update_elem(&stack_lat, &key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&stack_lat, &key);
		if (!v) {
			s->stack_missed++;
			return;
		}
	}
	__sync_fetch_and_add(&v->count, 1);
	__sync_fetch_and_add(&v->total_ns, delta);
	if (delta > v->max_ns)
		v->max_ns = delta; /* racy between CPUs: a max, not a sum */
}

/* --stack --unwind dwarf, at a user function's return: the call and a copy
 * of the caller's stack, unwound by user space. A full ring buffer is
 * counted per function in stack_missed (the call itself is counted). */
static __always_inline void send_copy(struct pt_regs *regs, __u32 func, __u64 delta, struct strlat_stats *s)
{
	struct strlat_call *c = bpf_ringbuf_reserve(&calls, sizeof(*c), 0);
	bool fault;

	if (!c) {
		s->stack_missed++;
		return;
	}
	c->ns = delta;
	c->func = func;
	c->tgid = bpf_get_current_pid_tgid() >> 32;
	c->ip = PT_REGS_IP(regs);
	c->sp = PT_REGS_SP(regs);
	c->bp = PT_REGS_FP(regs);
	c->lr = rbtrace_user_lr(regs);
	c->pad = 0;
	c->stack_len = rbtrace_copy_user_stack(c->stack, c->sp, &fault);
	bpf_ringbuf_submit(c, 0);
}

static __always_inline void record(void *ctx, __u32 func, __u64 delta, bool kernel)
{
	struct strlat_stats *s = get_stats(func);
	struct strlat_max *mx;

	if (!s)
		return;
	s->count++;
	s->total_ns += delta;
	mx = bpf_map_lookup_elem(&max_ns, &func);
	if (mx && delta > mx->max_ns)
		mx->max_ns = delta;
	hist_add(func, STRLAT_HIST_NS, delta);
	hist_add(func, STRLAT_HIST_UNIT, delta / unit_div);
	/* `kernel` is a constant in each program: the copy (which reads ctx as a
	 * uprobe's pt_regs) is compiled into the uretprobes only. */
	if (want_stacks && want_copies && !kernel)
		send_copy(ctx, func, delta, s);
	else if (want_stacks)
		record_stack(ctx, func, delta, kernel, s);
}

/* A return whose entry we did not see, of function `func`. */
static __always_inline void count_unmatched(__u32 func)
{
	struct strlat_stats *s = get_stats(func);
	if (s)
		s->unmatched++;
}

/* A user function returns: pop frames down to the one whose stack pointer
 * matches (see the top of the file). */
static __always_inline int leave_user(void *ctx, __u64 expect_sp, __u32 func)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 id = bpf_get_current_pid_tgid();
	struct strlat_stack *st;
	int i;

	if (!rbtrace_wanted(id >> 32))
		return 0;
	st = bpf_map_lookup_elem(&stacks, &id);
	if (!st) {
		count_unmatched(func);
		return 0;
	}
	for (i = 0; i < STRLAT_MAX_DEPTH; i++) {
		__u32 d = st->depth;
		struct strlat_frame *f;

		if (d == 0 || d > STRLAT_MAX_DEPTH)
			break;
		f = &st->f[(d - 1) & (STRLAT_MAX_DEPTH - 1)];
		if (f->sp > expect_sp)
			break; /* an outer call: this return's entry was not kept */
		st->depth = d - 1;
		if (f->sp < expect_sp) {
			struct strlat_stats *s = get_stats(f->func);
			if (s)
				s->stale++; /* skipped by longjmp */
			continue;
		}
		record(ctx, f->func, now - f->ts, false);
		return 0;
	}
	count_unmatched(func);
	return 0;
}

/* A kernel function returns: its frame is the top one. */
static __always_inline int leave_kernel(void *ctx, __u32 func)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 id = bpf_get_current_pid_tgid();
	struct strlat_stack *st;
	struct strlat_frame *f;
	__u32 d, top;

	if (!rbtrace_wanted(id >> 32))
		return 0;
	st = bpf_map_lookup_elem(&stacks, &id);
	d = st ? st->depth : 0;
	if (!st || d == 0 || d > STRLAT_MAX_DEPTH) {
		count_unmatched(func);
		return 0;
	}
	st->depth = d - 1;
	/* clang drops a mask it can prove redundant, and the verifier then
	 * cannot bound the index: hide its value from clang. */
	top = d - 1;
	asm volatile("" : "+r"(top));
	f = &st->f[top & (STRLAT_MAX_DEPTH - 1)];
	record(ctx, f->func, now - f->ts, true);
	return 0;
}

/* ---- user functions -------------------------------------------------------- */

/* One function: needs no cookie (so 5.10's kernel loads it). */
SEC("uprobe")
int BPF_KPROBE(strlat_entry)
{
	if (size_arg && rbtrace_wanted_current())
		hist_add(0, STRLAT_HIST_SIZE, size_argument(ctx));
	return enter(0, PT_REGS_SP(ctx));
}

/* Several functions: the cookie of each uprobe link is its index. */
SEC("uprobe")
int BPF_KPROBE(strlat_entry_multi)
{
	__u32 func = bpf_get_attach_cookie(ctx);

	if (func >= STRLAT_MAX_FUNCS)
		return 0;
	if (size_arg && rbtrace_wanted_current())
		hist_add(func, STRLAT_HIST_SIZE, size_argument(ctx));
	return enter(func, PT_REGS_SP(ctx));
}

SEC("uretprobe")
int BPF_KRETPROBE(strlat_return)
{
	return leave_user(ctx, PT_REGS_SP(ctx) - RET_SP_ADJ, 0);
}

/* The return's cookie names the function only for `unmatched`: a frame
 * carries its own function. */
SEC("uretprobe")
int BPF_KRETPROBE(strlat_return_multi)
{
	__u32 func = bpf_get_attach_cookie(ctx);

	return leave_user(ctx, PT_REGS_SP(ctx) - RET_SP_ADJ, func < STRLAT_MAX_FUNCS ? func : 0);
}

/* ---- a kernel function (--kfunc): fentry/fexit, else kprobe/kretprobe ---- */

/* The target is set at run time (bpf_program__set_attach_target); no
 * argument is read, so any function with BTF will do. */
SEC("fentry")
int BPF_PROG(strlat_fentry)
{
	return enter(0, 0);
}

SEC("fexit")
int BPF_PROG(strlat_fexit)
{
	return leave_kernel(ctx, 0);
}

SEC("kprobe")
int BPF_KPROBE(strlat_kprobe)
{
	return enter(0, 0);
}

SEC("kretprobe")
int BPF_KRETPROBE(strlat_kretprobe)
{
	return leave_kernel(ctx, 0);
}
