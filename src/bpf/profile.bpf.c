/* rbtrace profile: CPU sampling. One program runs at every tick of a
 * software cpu-clock perf event on each CPU (src/core/bpf/perf.ts); it counts
 * the (process, user stack, kernel stack, comm) it interrupted. The frames
 * live in rbtrace_stacks (rbtrace_stacks.bpf.h), the counts in `counts`:
 * user space reads both once, at the end, and symbolizes. A process's first
 * sample is also sent on `new_pids`, so user space snapshots its mappings
 * while it is alive (it may be gone by the end). */
#include "rbtrace.bpf.h"
#include "rbtrace_stacks.bpf.h"
#include "profile.h"

const volatile __u32 stacks = PROFILE_BOTH; /* enum profile_stacks */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PROFILE_MAX_KEYS);
	__type(key, struct profile_key);
	__type(value, __u64);
} counts SEC(".maps");

/* Samples not counted: `counts` full. Per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

RBTRACE_NEW_PIDS(__u8);

RBTRACE_EXPORT_TYPE(struct profile_key, profile_key);
RBTRACE_EXPORT_TYPE(struct profile_pid_event, profile_pid_event);

static __always_inline void count_dropped(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&dropped, &zero);
	if (n)
		*n += 1;
}

SEC("perf_event")
int profile_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct profile_key key = {};
	__u64 one = 1, *n;
	__u8 yes = 1;

	if ((__u32)id == 0) /* the idle task: not a process's time */
		return 0;
	if (!rbtrace_wanted(tgid))
		return 0;
	key.tgid = tgid;
	key.user_stack = stacks == PROFILE_KERNEL_ONLY ? RBTRACE_STACK_NONE : rbtrace_stack_id(ctx, BPF_F_USER_STACK);
	key.kernel_stack = stacks == PROFILE_USER_ONLY ? RBTRACE_STACK_NONE : rbtrace_stack_id(ctx, 0);
	bpf_get_current_comm(key.comm, sizeof(key.comm));

	n = bpf_map_lookup_elem(&counts, &key);
	if (n) {
		__sync_fetch_and_add(n, 1);
	} else if (bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST)) {
		n = bpf_map_lookup_elem(&counts, &key); /* another CPU added it meanwhile */
		if (n)
			__sync_fetch_and_add(n, 1);
		else
			count_dropped();
	}

	if (!bpf_map_lookup_elem(&seen_pids, &tgid) &&
	    !bpf_map_update_elem(&seen_pids, &tgid, &yes, BPF_NOEXIST)) {
		struct profile_pid_event *e = rbtrace_reserve(&new_pids, sizeof(*e));
		if (e) {
			e->tgid = tgid;
			bpf_ringbuf_submit(e, 0);
		}
	}
	return 0;
}
