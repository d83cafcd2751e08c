// SPDX-License-Identifier: GPL-2.0
/* strlat: latency of a user-space function (default Ruby's rb_str_new)
 * through a uprobe on its entry and a uretprobe on its return.
 *
 * Attach path: uprobe + uretprobe only (user-space functions have no
 * fentry/kprobe/tracepoint alternative); user space resolves the symbol
 * (raw or demangled) to a file offset itself (src/core/elf.ts).
 *
 * Each thread keeps a stack of start times (LRU hash by pid_tgid), so
 * recursion and threads pair entries with their own returns. The stack
 * pointer at entry is kept too: at the return it must be the entry's plus
 * the return address (x86) or equal (arm64). Frames below it were skipped
 * by longjmp (Ruby raises that way) and are dropped; a frame above it means
 * this return's entry was not recorded (stack full, or before attach).
 */
#include "rbtrace.bpf.h"
#include "bits.bpf.h"
#include "strlat.h"

/* Kept in the BPF side only (user space never reads the stacks). */
/* One call in flight: when it started, and the stack pointer at entry,
 * which pairs it with its return even when longjmp skipped frames. */
struct strlat_frame {
	__u64 ts;
	__u64 sp;
};

struct strlat_stack {
	__u32 depth;
	__u32 pad;
	struct strlat_frame f[STRLAT_MAX_DEPTH];
};


const volatile __u64 unit_div = 1; /* ns per displayed unit: 1, 1000, 1000000 */
const volatile __u32 size_arg = 0; /* --size: 1-based argument index, 0: off */

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

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct strlat_stats);
} stats SEC(".maps");

/* Max per interval: user space reads and zeroes it (a max cannot be diffed). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} max_ns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STRLAT_HIST_KINDS);
	__type(key, __u32);
	__type(value, struct strlat_hist);
} hists SEC(".maps");

static const struct strlat_stack empty_stack;

static __always_inline void hist_add(__u32 kind, __u64 v)
{
	struct strlat_hist *h = bpf_map_lookup_elem(&hists, &kind);
	__u64 slot = log2l(v);

	if (!h)
		return;
	if (slot >= STRLAT_SLOTS)
		slot = STRLAT_SLOTS - 1;
	h->slots[slot]++;
}

static __always_inline struct strlat_stats *get_stats(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&stats, &zero);
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

SEC("uprobe")
int BPF_KPROBE(strlat_entry)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct strlat_stack *st;
	struct strlat_stats *s;
	__u32 d;

	if (!rbtrace_wanted(id >> 32))
		return 0;
	if (size_arg)
		hist_add(STRLAT_HIST_SIZE, size_argument(ctx));
	st = bpf_map_lookup_elem(&stacks, &id);
	if (!st) {
		bpf_map_update_elem(&stacks, &id, &empty_stack, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&stacks, &id);
		if (!st)
			return 0;
	}
	d = st->depth;
	if (d >= STRLAT_MAX_DEPTH) {
		s = get_stats();
		if (s)
			s->dropped++;
		return 0;
	}
	st->f[d & (STRLAT_MAX_DEPTH - 1)].sp = PT_REGS_SP(ctx);
	st->f[d & (STRLAT_MAX_DEPTH - 1)].ts = bpf_ktime_get_ns();
	st->depth = d + 1;
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(strlat_return)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 id = bpf_get_current_pid_tgid();
	__u64 expect_sp = PT_REGS_SP(ctx) - RET_SP_ADJ;
	struct strlat_stack *st;
	struct strlat_stats *s;
	__u32 zero = 0;
	int i;

	if (!rbtrace_wanted(id >> 32))
		return 0;
	s = get_stats();
	if (!s)
		return 0;
	st = bpf_map_lookup_elem(&stacks, &id);
	if (!st) {
		s->unmatched++;
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
			s->stale++; /* skipped by longjmp */
			continue;
		}
		__u64 delta = now - f->ts;
		s->count++;
		s->total_ns += delta;
		__u64 *mx = bpf_map_lookup_elem(&max_ns, &zero);
		if (mx && delta > *mx)
			*mx = delta;
		hist_add(STRLAT_HIST_NS, delta);
		hist_add(STRLAT_HIST_UNIT, delta / unit_div);
		return 0;
	}
	s->unmatched++;
	return 0;
}
