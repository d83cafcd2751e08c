/* rbstack: CPU samples for user-space unwinding (perf's --call-graph dwarf
 * approach). Each sample sends the user registers and a bounded copy of the
 * user stack from sp up (src/core/unwind/ then unwinds it with the modules'
 * .eh_frame CFI), the kernel stack as a stack-map id (the kernel has frame
 * pointers), and, in a process running Ruby, the VM's control frames (iseq,
 * pc) of the thread that holds the GVL when that is the sampled thread.
 *
 * Why not unwind in BPF from prepared tables (Parca, OpenTelemetry): that
 * needs per-module tables built and loaded before the first sample and a
 * verifier-friendly table walk; this copies 16 KiB per sample and does the
 * rest in user space, where a cache per module makes it cheap. */
#include "rbtrace.bpf.h"
#include "rbtrace_stacks.bpf.h"
#include "rbtrace_ustack.bpf.h"
#include "rbstack.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} samples SEC(".maps");

/* Ruby processes: tgid -> where the VM is (filled by user space). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct rbstack_ruby);
} ruby_procs SEC(".maps");

RBTRACE_NEW_PIDS(__u8);

RBTRACE_EXPORT_TYPE(struct rbstack_sample, rbstack_sample);
RBTRACE_EXPORT_TYPE(struct rbstack_ruby, rbstack_ruby);

static __always_inline __u64 thread_pointer(struct task_struct *task)
{
#if defined(__TARGET_ARCH_x86)
	return BPF_CORE_READ(task, thread.fsbase);
#elif defined(__TARGET_ARCH_arm64)
	return BPF_CORE_READ(task, thread.uw.tp_value);
#else
	return 0;
#endif
}

/* Is `pthread` (a pthread_t, glibc's struct pthread *) the thread whose
 * thread pointer is `tp`? x86-64 glibc (TLS variant II): the thread pointer
 * is the struct pthread itself. aarch64 glibc (variant I): the thread pointer
 * is the TCB right after the struct pthread (THREAD_SELF is
 * `(struct pthread *)__builtin_thread_pointer() - 1`), so tp - pthread is
 * sizeof(struct pthread), a glibc build constant: checked as a window of
 * 4 KiB rather than one size per glibc (Debian 12's 2.36 is inside it: the
 * arm64 VM check names Ruby frames). Two threads' descriptors are never that
 * close (each sits at the top of its own stack mapping, the main thread's
 * in ld.so's static TLS block). */
static __always_inline bool same_thread(__u64 pthread, __u64 tp)
{
#if defined(__TARGET_ARCH_arm64)
	return pthread && pthread < tp && tp - pthread <= 4096;
#else
	return pthread == tp;
#endif
}

/* Ruby's T_IMEMO of type imemo_ment (a method entry)? (flags & T_MASK) == T_IMEMO, imemo type in bits 12-15. */
static __always_inline int imemo_type(__u64 v)
{
	__u64 flags = 0;

	if (!v || (v & 7) || bpf_probe_read_user(&flags, 8, (void *)v) || (flags & 0x1f) != 0x1a)
		return -1;
	return (flags >> 12) & 0xf;
}

/* vm_insnhelper.c rb_vm_frame_method_entry: the first ep[-2] along the env
 * chain that is a method entry; at the local env it may sit in an svar.
 * Read here because envs live on the VM stack, gone by the time user space
 * reads; method entries are heap objects that stay. */
static __always_inline __u64 method_entry(__u64 cfp, struct rbstack_ruby *rb)
{
	__u64 ep = 0, flags = 0, v = 0;

	if (bpf_probe_read_user(&ep, 8, (void *)(cfp + rb->cfp_ep)))
		return 0;
	for (int j = 0; j < RBSTACK_EP_HOPS; j++) {
		int t;

		if (bpf_probe_read_user(&flags, 8, (void *)ep) || bpf_probe_read_user(&v, 8, (void *)(ep - 16)))
			return 0;
		t = imemo_type(v);
		if (t == 6) /* imemo_ment */
			return v;
		if (flags & 2) { /* VM_ENV_FLAG_LOCAL */
			if (t == 2 && !bpf_probe_read_user(&v, 8, (void *)(v + 8)) && imemo_type(v) == 6) /* imemo_svar */
				return v;
			return 0;
		}
		if (bpf_probe_read_user(&ep, 8, (void *)(ep - 8)))
			return 0;
		ep &= ~3ULL; /* VM_ENV_PREV_EP: the guarded previous ep */
	}
	return 0;
}

/* Marking or sweeping now: objspace's mode, when its "GC running" bit is set
 * (lazy sweeping and incremental marking leave the mode set between steps). */
static __always_inline __u32 gc_state(struct rbstack_ruby *rb)
{
	__u64 vm = 0, os = 0;
	__u32 flags = 0;

	if (!rb->vm_ptr || !rb->vm_objspace || bpf_probe_read_user(&vm, 8, (void *)rb->vm_ptr) || !vm ||
	    bpf_probe_read_user(&os, 8, (void *)(vm + rb->vm_objspace)) || !os ||
	    bpf_probe_read_user(&flags, 4, (void *)(os + rb->objspace_flags)))
		return 0;
	if (!(flags & (1U << (rb->gc_running_bit & 31))))
		return 0;
	if ((flags & 3) == 1)
		return RBSTACK_F_GC_MARK;
	if ((flags & 3) == 2)
		return RBSTACK_F_GC_SWEEP;
	return 0;
}

/* The user registers, saved at kernel entry (rbtrace_ustack.bpf.h). */
static __always_inline void user_regs(struct rbstack_sample *s, struct task_struct *task)
{
	struct pt_regs *regs = rbtrace_task_user_regs(task);

	s->ip = PT_REGS_IP_CORE(regs);
	s->sp = PT_REGS_SP_CORE(regs);
	s->bp = PT_REGS_FP_CORE(regs);
	s->lr = rbtrace_user_lr(regs);
}

/* The main ractor: through ruby_single_main_ractor where libruby exports it,
 * else through the VM (read at each sample: the VM is created after libruby
 * is mapped, so a process seen early has none yet). */
static __always_inline __u64 main_ractor(struct rbstack_ruby *rb)
{
	__u64 vm = 0, ractor = 0;

	if (rb->main_ractor_ptr) {
		if (bpf_probe_read_user(&ractor, 8, (void *)rb->main_ractor_ptr))
			return 0;
		return ractor;
	}
	if (!rb->vm_ptr || bpf_probe_read_user(&vm, 8, (void *)rb->vm_ptr) || !vm ||
	    bpf_probe_read_user(&ractor, 8, (void *)(vm + rb->vm_main_ractor)))
		return 0;
	return ractor;
}

static __always_inline void ruby_frames(struct rbstack_sample *s, struct rbstack_ruby *rb, struct task_struct *task)
{
	__u64 ractor, ec = 0, thread = 0, tid = 0, cfp = 0, vm_stack = 0, vm_stack_size = 0, end;
	__u32 n = 0;

	ractor = main_ractor(rb);
	if (!ractor)
		return;
	if (bpf_probe_read_user(&ec, 8, (void *)(ractor + rb->ractor_running_ec)) || !ec)
		return;
	/* The GVL holder's ec: ours only if its thread is the one sampled. */
	if (bpf_probe_read_user(&thread, 8, (void *)(ec + rb->ec_thread_ptr)) || !thread)
		return;
	if (rb->thread_nt && (bpf_probe_read_user(&thread, 8, (void *)(thread + rb->thread_nt)) || !thread))
		return;
	if (bpf_probe_read_user(&tid, 8, (void *)(thread + rb->thread_id)))
		return;
	if (!same_thread(tid, thread_pointer(task))) {
		s->flags |= RBSTACK_F_RUBY_OTHER;
		return;
	}
	if (bpf_probe_read_user(&cfp, 8, (void *)(ec + rb->ec_cfp)) ||
	    bpf_probe_read_user(&vm_stack, 8, (void *)(ec + rb->ec_vm_stack)) ||
	    bpf_probe_read_user(&vm_stack_size, 8, (void *)(ec + rb->ec_vm_stack_size)))
		return;
	/* Control frames grow down from the end of the VM stack. */
	end = vm_stack + vm_stack_size * 8;
	s->flags |= RBSTACK_F_RUBY | gc_state(rb);
	for (int i = 0; i < RBSTACK_RUBY_FRAMES; i++) {
		struct rbstack_ruby_frame *f = &s->ruby[i];

		if (cfp + rb->cfp_size > end)
			break;
		if (bpf_probe_read_user(&f->iseq, 8, (void *)(cfp + rb->cfp_iseq)) ||
		    bpf_probe_read_user(&f->pc, 8, (void *)(cfp + rb->cfp_pc)))
			break;
		f->me = method_entry(cfp, rb);
		n = i + 1;
		cfp += rb->cfp_size;
	}
	if (cfp + rb->cfp_size <= end && n == RBSTACK_RUBY_FRAMES)
		s->flags |= RBSTACK_F_RUBY_CUT;
	s->ruby_frames = n;
}

SEC("perf_event")
int rbstack_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct task_struct *task;
	struct rbstack_sample *s;
	struct rbstack_ruby *rb;
	bool fault;
	__u8 yes = 1;

	if ((__u32)id == 0)
		return 0;
	if (!rbtrace_wanted(tgid))
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	if (BPF_CORE_READ(task, flags) & 0x00200000) /* PF_KTHREAD: no user stack */
		return 0;
	s = rbtrace_reserve(&samples, sizeof(*s));
	if (!s)
		return 0;
	s->tgid = tgid;
	s->tid = (__u32)id;
	s->flags = 0;
	s->ruby_frames = 0;
	s->stack_len = 0;
	bpf_get_current_comm(s->comm, sizeof(s->comm));
	s->kernel_stack = rbtrace_stack_id(ctx, 0);
	user_regs(s, task);

	s->stack_len = rbtrace_copy_user_stack(s->stack, s->sp, &fault);
	if (fault)
		s->flags |= RBSTACK_F_STACK_FAULT;

	rb = bpf_map_lookup_elem(&ruby_procs, &tgid);
	if (rb)
		ruby_frames(s, rb, task);
	bpf_ringbuf_submit(s, 0);

	if (!bpf_map_lookup_elem(&seen_pids, &tgid) &&
	    !bpf_map_update_elem(&seen_pids, &tgid, &yes, BPF_NOEXIST)) {
		__u32 *e = rbtrace_reserve(&new_pids, sizeof(*e));
		if (e) {
			*e = tgid;
			bpf_ringbuf_submit(e, 0);
		}
	}
	return 0;
}
