/* mallocstat: structs shared by mallocstat.bpf.c and src/tools/mallocstat.ts
 * (layouts generated from the object's BTF at build time). */
#ifndef MALLOCSTAT_H
#define MALLOCSTAT_H

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

/* active map: a thread inside a timed allocator function. */
struct ms_active {
	__u64 start_ns;
	__u32 func;
	__u32 depth; /* timed allocator calls nested inside this one (their returns are ignored) */
};

struct ms_comm {
	char comm[16];
};

#endif
