/* --window (src/core/bpf/usdt-windows.ts): what a USDT tool with time
 * windows counts. The semaphores decide when the traced program fires the
 * probes (the cost); this gate decides what is counted, so that a count is
 * exactly what happened while a window was open.
 *
 * The two differ in a process that has just mapped the library: the kernel
 * raises its semaphores as soon as it installs the probes there, and
 * rbtrace lowers them only when it next looks (every 10 ms, later on a
 * loaded machine). A ruby's boot allocates hundreds of Strings in that time
 * (a CI run counted 930 of them outside any window: String 27 % of a loop
 * that allocates four classes evenly).
 *
 * Slot 0 is 1 while the windows are shut. Without --window nothing writes
 * it: 0, everything counted. */
#ifndef RBTRACE_WINDOW_BPF_H
#define RBTRACE_WINDOW_BPF_H

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} rbtrace_window_shut SEC(".maps");

static __always_inline bool rbtrace_window_open(void)
{
	__u32 zero = 0;
	__u32 *shut = bpf_map_lookup_elem(&rbtrace_window_shut, &zero);

	return !shut || !*shut;
}

#endif
