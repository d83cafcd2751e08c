// SPDX-License-Identifier: GPL-2.0
/* A test object for the typed skeleton (test/unit/skeleton.test.ts), never
 * loaded. Built with -DRENAMED its map `counts` is `tallies`: the test
 * expects TypeScript written against the first to fail to type-check
 * against the second. */
#include "rbtrace.bpf.h"
#include "skeleton.h"

#ifdef RENAMED_FIELD
#define SKEL_COUNT hits
#else
#define SKEL_COUNT count
#endif

#ifdef RENAMED
#define COUNTS tallies
#else
#define COUNTS counts
#endif

const volatile __u64 targ_cookie = 0;
const volatile bool targ_on = false;
const volatile char targ_comm[16] = {};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 128);
	__type(key, struct skel_key);
	__type(value, struct skel_value);
} COUNTS SEC(".maps");

SEC("raw_tp/sys_enter")
int BPF_PROG(skel_enter, struct pt_regs *regs, long id)
{
	struct skel_key key = { .addr = targ_cookie, .pid = bpf_get_current_pid_tgid() >> 32 };
	struct skel_value *v;

	if (!targ_on || id != SKEL_TWO)
		return 0;
	v = bpf_map_lookup_elem(&COUNTS, &key);
	if (v)
		__sync_fetch_and_add(&v->SKEL_COUNT, 1);
	return 0;
}
