/* rbstack: structs shared by rbstack.bpf.c and src/core/unwind/. */
#ifndef RBSTACK_H
#define RBSTACK_H

#include "rbtrace_ustack.h"

/* Bytes of user stack copied per sample and the page of slack after them
 * (src/bpf/include/rbtrace_ustack.h says why). */
#define RBSTACK_STACK_BYTES RBTRACE_USTACK_BYTES
#define RBSTACK_PAGE RBTRACE_USTACK_PAGE
/* Ruby control frames kept per sample, innermost first. */
#define RBSTACK_RUBY_FRAMES 96

enum rbstack_flags {
	RBSTACK_F_RUBY = 1,        /* ruby frames were read */
	RBSTACK_F_RUBY_OTHER = 2,  /* a ruby process, but this thread does not hold the GVL */
	RBSTACK_F_RUBY_CUT = 4,    /* more control frames than RBSTACK_RUBY_FRAMES */
	RBSTACK_F_STACK_FAULT = 8, /* the stack copy failed */
	RBSTACK_F_GC_MARK = 16,    /* the GVL holder was in the GC, marking (rb_objspace flags) */
	RBSTACK_F_GC_SWEEP = 32,   /* ... sweeping */
};
/* Ruby's method-entry walk (rb_vm_frame_method_entry): env hops followed per frame. */
#define RBSTACK_EP_HOPS 4

/* Where the Ruby VM is in one process, and its struct layout (per Ruby
 * version: src/core/unwind/ruby.ts). Written by user space. */
struct rbstack_ruby {
	/* Address of ruby_single_main_ractor (a pointer variable: 3.1), or 0: the
	 * main ractor is then *(*vm_ptr + vm_main_ractor), rb_vm_t.ractor.main_ractor
	 * (3.3, whose libruby exports no ractor symbol). */
	__u64 main_ractor_ptr;
	__u32 ractor_running_ec; /* rb_ractor_t.threads.running_ec */
	__u32 ec_vm_stack;
	__u32 ec_vm_stack_size;
	__u32 ec_cfp;
	__u32 ec_thread_ptr;
	__u32 thread_nt; /* 0, or rb_thread_t.nt (3.3+: thread_id is in the native thread it points to) */
	__u32 thread_id; /* rb_thread_t.thread_id, or rb_native_thread.thread_id (pthread_t: the thread pointer on x86-64 glibc) */
	__u32 cfp_size;
	__u32 cfp_pc;
	__u32 cfp_iseq;
	__u32 cfp_ep;
	/* ruby_current_vm_ptr's address (0: unknown). GC state: *vm_ptr -> objspace
	 * (vm_objspace 0: not read) -> flags, whose bits 0-1 are the mode (1 marking,
	 * 2 sweeping) and gc_running_bit says the GC runs now. */
	__u64 vm_ptr;
	__u32 vm_objspace;
	__u32 objspace_flags;
	__u32 gc_running_bit;
	__u32 vm_main_ractor;
};

struct rbstack_ruby_frame {
	__u64 iseq; /* 0: a C function frame */
	__u64 pc;   /* iseq frame: pc; C frame: 0 */
	__u64 me;   /* the frame's method entry (rb_callable_method_entry_t), 0: none (<main>, a class body) */
};

struct rbstack_sample {
	__u32 tgid;
	__u32 tid;
	__s32 kernel_stack; /* rbtrace_stacks id, -1: none */
	__u32 flags;        /* enum rbstack_flags */
	__u64 ip;           /* user registers at the sample (the task's saved user regs) */
	__u64 sp;
	__u64 bp;
	__u64 lr;        /* arm64: x30, the link register (rbtrace_user_lr); 0 on x86-64 */
	__u32 stack_len;    /* bytes of stack[] valid */
	__u32 ruby_frames;  /* entries of ruby[] valid */
	char comm[16];
	struct rbstack_ruby_frame ruby[RBSTACK_RUBY_FRAMES];
	__u8 stack[RBSTACK_STACK_BYTES + RBSTACK_PAGE];
};

#endif /* RBSTACK_H */
