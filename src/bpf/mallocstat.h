/* mallocstat: structs shared by mallocstat.bpf.c and src/tools/mallocstat/
 * (layouts generated from the object's BTF at build time). */
#ifndef MALLOCSTAT_H
#define MALLOCSTAT_H

#include "rbtrace_ustack.h"

#define MALLOCSTAT_SLOTS 64 /* log2 slots of requested sizes */

/* The allocator functions, in the order user space names them. */
enum ms_func {
	MS_MALLOC = 0,
	MS_CALLOC = 1,
	MS_REALLOC = 2,
	MS_REALLOCARRAY = 3,
	MS_FREE = 4,
	MS_POSIX_MEMALIGN = 5,
	MS_ALIGNED_ALLOC = 6,
	MS_MEMALIGN = 7,
	MS_NFUNCS = 8,
};

/* stats map: per process (pid 0 without -P) and function. */
struct ms_key {
	__u32 pid;
	__u32 func;
};

struct ms_stats {
	__u64 count;    /* calls made by the program (not the allocator's own nested calls) */
	__u64 bytes;    /* bytes requested */
	__u64 timed;    /* calls whose return was seen (timed functions only) */
	__u64 total_ns; /* time inside the function, over those calls */
	__u64 max_ns;
};

/* hist map: log2 slot of the requested size, per process. */
struct ms_hist_key {
	__u32 pid;
	__u32 slot;
};

/* live map (--leaks): one allocation not freed yet. */
struct ms_live_key {
	__u32 pid;
	__u32 pad;
	__u64 addr;
};

struct ms_live {
	__u64 size;
	__u64 ts_ns;   /* bpf_ktime_get_ns() at the allocation's return (CLOCK_MONOTONIC) */
	__s32 stackid; /* user stack at the return (innermost: the caller), RBTRACE_STACK_LOST if lost,
			* MS_STACK_COPIED: sent as a copy (ms_alloc_copy), user space has it by (pid, addr) */
	__u32 pad;
};

/* --leaks --unwind dwarf: a live block's stack was sent in an ms_alloc_copy
 * record. Apart from rbtrace_stacks.bpf.h's NONE (-1) and LOST (-2). */
#define MS_STACK_COPIED (-3)
#define MS_COPIES_RING (8 * 1024 * 1024)

/* ms_copies records (--leaks --unwind dwarf): at an allocation's return, the
 * block and a copy of the caller's stack (src/bpf/include/rbtrace_ustack.bpf.h),
 * unwound at once by user space, which keeps (pid, addr) -> stack. */
struct ms_alloc_copy {
	__u32 pid;
	__u32 stack_len; /* bytes of stack[] valid */
	__u64 addr;
	__u64 ip;        /* user registers at the return: ip is the return address */
	__u64 sp;
	__u64 bp;
	__u64 lr;        /* arm64: x30, the link register (rbtrace_user_lr); 0 on x86-64 */
	__u8 stack[RBTRACE_USTACK_BYTES + RBTRACE_USTACK_PAGE];
};

/* ms_events records (--leaks). */
enum ms_event_kind {
	MS_EV_PROCESS = 1, /* a process's first allocation (since its exec) */
	MS_EV_STACK = 2,   /* a stack first seen in a process, as build ids and file offsets */
};

#define MS_STACK_FRAMES 127 /* = RBTRACE_STACK_DEPTH */

struct ms_pid_event {
	__u32 kind;
	__u32 pid;
};

/* The kernel's struct bpf_stack_build_id (uapi): status 1 = build id and
 * file offset, 2 = only the address. */
struct ms_build_frame {
	__s32 status;
	__u8 build_id[20];
	__u64 offset;
};

/* Frames named by file (build id) and offset when the stack is first seen:
 * they stay nameable after the process exits, when its mappings are gone. */
struct ms_stack_event {
	__u32 kind;
	__u32 pid;
	__s32 stackid;
	__u32 nframes;
	struct ms_build_frame frames[MS_STACK_FRAMES];
};

/* procs map (--leaks): a process seen allocating. */
struct ms_proc {
	__u64 exec_ns;  /* its exec during the run, 0 if none: older blocks went with the old image */
	__u32 announced; /* its first allocation (since that exec) was told to user space */
	__u32 pad;
};

/* active map: the allocator call a thread is inside, if any. One entry per
 * thread, kept for the thread's life and updated in place (no per-call
 * insert/delete: those take the map's bucket lock and its free list). */
struct ms_active {
	__u64 start_ns;
	__u64 size;     /* --leaks: bytes asked for */
	__u64 ptr;      /* --leaks: realloc's old block, posix_memalign's memptr */
	struct ms_live old; /* --leaks: realloc's old block, put back if realloc fails */
	__u32 func;
	__u32 depth;    /* allocator calls with a return probe nested inside this one (their returns are ignored) */
	__u8 inside;    /* in a call whose return is watched */
	__u8 had_old;
	__u8 pad[6];
};

struct ms_comm {
	char comm[16];
};

#endif
