/* gcstat: structs shared by gcstat.bpf.c and src/tools/gcstat/. */
#ifndef GCSTAT_H
#define GCSTAT_H

#define GCSTAT_SLOTS 64

enum gc_phase {
	GC_MARK = 0,
	GC_SWEEP = 1,
	GC_PHASES = 2,
};

struct gc_key {
	__u32 pid;   /* tgid */
	__u32 phase; /* enum gc_phase */
};

/* Per process and phase, since the last drain (user space drains it every interval). */
struct gc_stat {
	__u64 count;
	__u64 total_ns;
	__u64 max_ns;
	char comm[16]; /* of the thread that first ended a phase in the interval */
};

/* log2 slots of the duration in microseconds */
struct gc_hist {
	__u64 slots[GCSTAT_SLOTS];
};

/* One GC step (a mark or sweep probe pair) as it ends, for the collection
 * model (--log, one row per collection): gc_count and info are read from
 * the VM's rb_objspace when its layout is known (vm_ok), so each step is
 * put in the collection the VM numbered. */
struct gc_step {
	__u64 start_ns;
	__u64 dur_ns;
	__u64 gc_count;  /* objspace->profile.count: this collection's number */
	__u32 pid;
	__u32 phase;     /* enum gc_phase */
	__u32 info;      /* objspace->profile.latest_gc_info: GPR_FLAG_* (major_by, gc_by) */
	__u32 vm_ok;     /* 1: gc_count and info were read */
	char comm[16];
};

/* Where one Ruby keeps its GC's record (src/tools/gcstat/layout.ts), per
 * file attached: the USDT cookie of its probes is its index in `layouts`
 * (the exporter attaches many rubies, each with its own layout). Link-time
 * addresses of ruby_current_vm_ptr and of each end probe, then offsets in
 * rb_vm_t and rb_objspace_t. */
struct gc_layout {
	__u64 vm_ptr_vaddr;
	__u64 mark_end_vaddr;
	__u64 sweep_end_vaddr;
	__u32 off_vm_objspace;
	__u32 off_gc_count;
	__u32 off_gc_info;
	__u32 pad;
};

#define GCSTAT_LAYOUTS 4096

#endif
