// SPDX-License-Identifier: GPL-2.0
/* A test object for the SDK (test/e2e/sdk.test.ts): one program on
 * raw_tp/sys_enter that, for the test process's getppid() calls only,
 * counts in a hash map (by call number mod 7), in a per-CPU array, and
 * sends the call number through a deliberately small ring buffer. */
#include "rbtrace.bpf.h"

const volatile __u32 targ_pid = 0;
const volatile long targ_nr = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} by_mod SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} seqs SEC(".maps");

__u64 seq = 0;

SEC("raw_tp/sys_enter")
int BPF_PROG(count_getppid, struct pt_regs *regs, long id)
{
	__u32 zero = 0, mod;
	__u64 *v, one = 1, n;

	if (id != targ_nr || (bpf_get_current_pid_tgid() >> 32) != targ_pid)
		return 0;
	n = __sync_fetch_and_add(&seq, 1);
	mod = n % 7;
	v = bpf_map_lookup_elem(&by_mod, &mod);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&by_mod, &mod, &one, BPF_NOEXIST);
	v = bpf_map_lookup_elem(&total, &zero);
	if (v)
		*v += 1;
	rbtrace_output(&seqs, &n, sizeof(n));
	return 0;
}
