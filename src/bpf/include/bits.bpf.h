/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Bit helpers for rbtrace's BPF programs, equivalent to libbpf-tools'
 * bits.bpf.h. Include after vmlinux.h (it provides u32/u64); nothing else is
 * needed, so the CO-RE objects build without kernel headers.
 *
 * The log2 slot computed here must match log2Slot() in
 * src/core/output/histogram.ts: user space labels the buckets.
 */
#ifndef __RBTRACE_BITS_BPF_H
#define __RBTRACE_BITS_BPF_H

/* Normally from bpf_helpers.h; defined here so this header stands alone. */
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/*
 * Force a single load/store the compiler cannot merge, tear or re-read: needed
 * for globals shared with user space and for values read twice in one program.
 */
#define READ_ONCE(x)		(*(volatile typeof(x) *)&(x))
#define WRITE_ONCE(x, val)	((*(volatile typeof(x) *)&(x)) = (val))

/*
 * Branch-free floor(log2(v)) for 32 bits, 0 for v == 0. Written without loops
 * or __builtin_clz so that every kernel's verifier accepts it. Named log2/log2l
 * as in libbpf-tools so their code ports unchanged; the names shadow libm's,
 * which BPF programs never link (clang may warn; the bodies are ours).
 */
static __always_inline u64 log2(u32 v)
{
	u32 shift, r;

	r = (v > 0xFFFF) << 4; v >>= r;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

/* floor(log2(v)) for 64 bits: histogram slot of a u64 (0 and 1 -> slot 0). */
static __always_inline u64 log2l(u64 v)
{
	u32 hi = v >> 32;

	if (hi)
		return log2(hi) + 32;
	return log2(v);
}

#endif /* __RBTRACE_BITS_BPF_H */
