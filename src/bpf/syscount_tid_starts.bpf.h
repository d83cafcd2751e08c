/* Part of syscount.bpf.c (included there, after its maps and on_enter/on_exit):
 * entry times kept per thread id, for kernels without task storage. */
/* ---- Latency without task storage (5.10: BPF_MAP_TYPE_TASK_STORAGE and
 * bpf_get_current_task_btf() are 5.11+): entry times in a hash keyed by
 * thread id, as bcc's syscount keeps them. The entry is deleted at exit; a
 * thread that never returns (exit, exit_group, killed) leaves one behind, so
 * it is an LRU hash: stale entries go first when it fills. Only the tracepoint
 * paths need it (fentry on x64_sys_call is 6.9+). ---- */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} starts_tid SEC(".maps");

static __always_inline __u64 *start_slot(enum start_store store, bool create)
{
	__u32 tid;
	__u64 *p, zero = 0;

	if (store == START_TASK)
		return bpf_task_storage_get(&starts, bpf_get_current_task_btf(), 0,
					    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
	if (store != START_TID)
		return NULL;
	tid = (__u32)bpf_get_current_pid_tgid();
	p = bpf_map_lookup_elem(&starts_tid, &tid);
	if (p || !create)
		return p;
	bpf_map_update_elem(&starts_tid, &tid, &zero, BPF_ANY);
	return bpf_map_lookup_elem(&starts_tid, &tid);
}

static __always_inline void start_done(enum start_store store)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (store == START_TID)
		bpf_map_delete_elem(&starts_tid, &tid);
}

SEC("tp_btf/sys_enter")
int BPF_PROG(tbh_enter, struct pt_regs *regs, long id)
{
	return on_enter(id, START_TID);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(tbh_exit, struct pt_regs *regs, long ret)
{
	return on_exit((long)regs->NR_FIELD, ret, START_TID);
}

SEC("raw_tp/sys_enter")
int BPF_PROG(rth_enter, struct pt_regs *regs, long id)
{
	return on_enter(id, START_TID);
}

SEC("raw_tp/sys_exit")
int BPF_PROG(rth_exit, struct pt_regs *regs, long ret)
{
	return on_exit((long)BPF_CORE_READ(regs, NR_FIELD), ret, START_TID);
}
