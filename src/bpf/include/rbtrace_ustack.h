/* Sizes of the user-stack copy (rbtrace_ustack.bpf.h), shared by the
 * records that carry one (rbstack.h, strlat.h) and their TypeScript layouts. */
#ifndef RBTRACE_USTACK_H
#define RBTRACE_USTACK_H

/* Bytes of user stack copied, from sp up (at most to the end of the stack's
 * mapping). perf's --call-graph dwarf default is 8192; a ruby main thread
 * needs more (measured in src/core/unwind/README.md). */
#define RBTRACE_USTACK_BYTES 16384
/* The copy is made a page at a time up to the first unmapped page; a
 * record's stack[] has a page of slack so the verifier can bound each
 * page's read: stack[RBTRACE_USTACK_BYTES + RBTRACE_USTACK_PAGE]. */
#define RBTRACE_USTACK_PAGE 4096

#endif /* RBTRACE_USTACK_H */
