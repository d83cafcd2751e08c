/* Part of synqueue.bpf.c (included there, after its maps and per-packet
 * helpers): the iterators that snapshot every listener. */
/* ---- snapshot of every listener ----------------------------------------- */
/* One listener's record, from probe reads only (so that both iterators,
 * whose sockets come typed or not, share it). */
static __always_inline void fill_info(struct listener_info *info, struct sock *sk)
{
	struct inet_connection_sock *icsk = (struct inet_connection_sock *)sk;

	info->sk = (__u64)sk;
	info->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	info->port = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (info->family == AF_INET6)
		BPF_CORE_READ_INTO(&info->addr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
	else
		BPF_CORE_READ_INTO((__u32 *)info->addr, sk, __sk_common.skc_rcv_saddr);
	info->accept_queue = BPF_CORE_READ(sk, sk_ack_backlog);
	info->accept_limit = BPF_CORE_READ(sk, sk_max_ack_backlog);
	info->syn_queue = BPF_CORE_READ(icsk, icsk_accept_queue.qlen.counter);
	info->sk_drops = BPF_CORE_READ(sk, sk_drops.counter);
	info->uid = BPF_CORE_READ(sk, sk_uid.val);
	info->ino = BPF_CORE_READ(sk, sk_socket, file, f_inode, i_ino);
	info->netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

/* The same record from a socket the verifier knows the type of (a BTF
 * pointer): plain loads, which the JIT turns into guarded memory reads, in
 * place of a helper call per field (fill_info: ~20 bpf_probe_read_kernel
 * calls, ~0.9 us a listener, most of a 10,000-listener walk's cost). A
 * pointer reached through it (sk_socket, skc_net.net) may be NULL or gone:
 * such a load faults harmlessly and reads 0. `qlen`: the SYN queue length,
 * which lies past struct sock (in inet_connection_sock), so the caller reads
 * it the way its pointer's type allows. */
static __always_inline void fill_info_btf(struct listener_info *info, struct sock *sk, __u32 qlen)
{
	info->sk = (__u64)sk;
	info->family = sk->__sk_common.skc_family;
	info->port = sk->__sk_common.skc_num;
	if (info->family == AF_INET6)
		__builtin_memcpy(info->addr, sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8, 16);
	else
		*(__u32 *)info->addr = sk->__sk_common.skc_rcv_saddr;
	info->accept_queue = sk->sk_ack_backlog;
	info->accept_limit = sk->sk_max_ack_backlog;
	info->syn_queue = qlen;
	info->sk_drops = sk->sk_drops.counter;
	info->uid = sk->sk_uid.val;
	info->ino = sk->sk_socket->file->f_inode->i_ino;
	info->netns = sk->__sk_common.skc_net.net->ns.inum;
}

/* Did this snapshot's open-files walk pass the listener? (Then it has it,
 * with its owner; the iter/tcp walk after it is for listeners no process
 * holds.) Never before a walk sets `walk`: without iter/task_file the
 * iter/tcp walk is the only one. */
static __always_inline bool passed_by_files_walk(__u64 sk)
{
	__u32 zero = 0;
	struct walk_ctl *w = bpf_map_lookup_elem(&walk, &zero);
	struct listener_last *l;

	if (!w || !w->gen)
		return false;
	l = bpf_map_lookup_elem(&last, &sk);
	return l && l->gen == w->gen;
}

/* The namespace of the task that created the iterator (see netns.ts). */
SEC("iter/tcp")
int dump_listeners(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct seq_file *seq = ctx->meta->seq;
	struct listener_info info = {};
	struct tcp_sock *tp;

	if (!skc || skc->skc_state != SYNQUEUE_TCP_LISTEN)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;
	if (passed_by_files_walk((__u64)tp))
		return 0;
	fill_info_btf(&info, (struct sock *)tp, tp->inet_conn.icsk_accept_queue.qlen.counter);
	bpf_seq_write(seq, &info, sizeof(info));
	return 0;
}

/* Each listener of `ownerless` read again by its address. The address comes
 * from user space and the socket may have closed since: it is read with
 * probe reads (fill_info), which cannot fault, and reported only while it is
 * still a listener with the same port, namespace and inode (TCP sockets are
 * SLAB_TYPESAFE_BY_RCU: freed memory stays a socket, so a reused one is
 * told apart by those). One that fails the test is left out: user space
 * drops it, as a walk that no longer finds it would. (iter/bpf_map_elem: 5.9+.) */
SEC("iter/bpf_map_elem")
int dump_ownerless(struct bpf_iter__bpf_map_elem *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct ownerless_hint *hint = ctx->value;
	struct listener_info info = {};
	__u64 *key = ctx->key;
	struct sock *sk;

	if (!key || !hint)
		return 0;
	sk = (struct sock *)*key;
	if (BPF_CORE_READ(sk, __sk_common.skc_state) != SYNQUEUE_TCP_LISTEN)
		return 0;
	fill_info(&info, sk);
	if (info.port != hint->port || info.netns != hint->netns || info.ino != hint->ino)
		return 0;
	bpf_seq_write(seq, &info, sizeof(info));
	return 0;
}

#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define IPPROTO_TCP 6

/* The open-files walk passes a listener without a record when it passed it
 * already in this walk (another fd of it: tasks come in pid order, so the
 * lowest pid owns it, as ss -p and /proc scans report) or, unless the walk
 * is `full`, when `now` (its figures and owner) is what was last reported:
 * on a steady node most of 10,000 listeners cost a map lookup, not a record
 * to fill, copy and parse. */
static __always_inline bool known_to_walk(struct walk_ctl *w, __u64 sk, const struct listener_last *now)
{
	struct listener_last *l = bpf_map_lookup_elem(&last, &sk);

	if (!l)
		return false;
	if (l->gen == w->gen)
		return true;
	if (!w->full && l->ino == now->ino && l->pid == now->pid &&
	    l->accept_queue == now->accept_queue && l->accept_limit == now->accept_limit &&
	    l->syn_queue == now->syn_queue && l->sk_drops == now->sk_drops) {
		l->gen = w->gen;
		w->seen++;
		return true;
	}
	return false;
}

/* Write the listener's record, then mark it as passed (`last`). Written
 * first: when the record does not fit in the seq buffer, the kernel copies
 * the buffer out and runs this program again on the same file, so nothing
 * may be marked as passed until the record is in. */
static __always_inline void write_file_listener(struct seq_file *seq, struct walk_ctl *w, struct listener_info *info,
						struct listener_last *now)
{
	if (bpf_seq_write(seq, info, sizeof(*info)))
		return;
	now->gen = w->gen;
	bpf_map_update_elem(&last, &info->sk, now, BPF_ANY);
	w->seen++;
	w->reported++;
}

/* What known_to_walk() compares, from a record. */
static __always_inline void figures_of(struct listener_last *now, const struct listener_info *info)
{
	now->ino = info->ino;
	now->pid = info->pid;
	now->accept_queue = info->accept_queue;
	now->accept_limit = info->accept_limit;
	now->syn_queue = info->syn_queue;
	now->sk_drops = info->sk_drops;
}

/* The walk's control, or NULL before user space numbered a walk (then every listener is written, unmarked). */
static __always_inline struct walk_ctl *walk_ctl(void)
{
	__u32 zero = 0;
	struct walk_ctl *w = bpf_map_lookup_elem(&walk, &zero);

	return w && w->gen ? w : NULL;
}

/* Every network namespace in one pass: every open file of every process
 * (threads sharing their leader's files are skipped by the kernel), keeping
 * TCP listening sockets, with the process holding them, each reported by
 * known_to_walk and write_file_listener (once per walk; on a delta walk only
 * when changed).
 * iter/task_file is 5.8+; before 5.11 sockets are read with probe reads
 * (file->private_data is a void *), which every kernel with BTF allows. */
SEC("iter/task_file")
int dump_listener_files(struct bpf_iter__task_file *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct listener_info info = {};
	struct listener_last now = {};
	struct walk_ctl *w;
	struct socket *sock;
	struct sock *sk;

	if (!task || !file)
		return 0;
	/* 5.11+: the file's socket as a typed pointer (NULL when the file is not
	 * a socket), then plain loads (fill_info_btf). On older kernels this
	 * branch is dead (CO-RE makes the test a constant) and never verified. */
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_sock_from_file)) {
		struct inet_connection_sock *icsk;
		__u32 qlen;

		sock = bpf_sock_from_file(file);
		if (!sock)
			return 0;
		sk = sock->sk;
		if (!sk || sk->__sk_common.skc_state != SYNQUEUE_TCP_LISTEN || sk->sk_protocol != IPPROTO_TCP)
			return 0;
		if (sk->__sk_common.skc_family != AF_INET && sk->__sk_common.skc_family != AF_INET6)
			return 0;
		icsk = (struct inet_connection_sock *)sk;
		qlen = BPF_CORE_READ(icsk, icsk_accept_queue.qlen.counter);
		/* First only what a delta walk compares; the rest of the record
		 * (address, namespace, uid, comm: more cache lines) only for a
		 * listener it reports. The inode is the file's, in hand. */
		now.ino = file->f_inode->i_ino;
		now.pid = task->tgid;
		now.accept_queue = sk->sk_ack_backlog;
		now.accept_limit = sk->sk_max_ack_backlog;
		now.syn_queue = qlen;
		now.sk_drops = sk->sk_drops.counter;
		w = walk_ctl();
		if (w && known_to_walk(w, (__u64)sk, &now))
			return 0;
		fill_info_btf(&info, sk, qlen);
		info.ino = now.ino;
		info.pid = now.pid;
		__builtin_memcpy(info.comm, task->group_leader->comm, sizeof(info.comm));
		if (w)
			write_file_listener(seq, w, &info, &now);
		else
			bpf_seq_write(seq, &info, sizeof(info));
		return 0;
	}
	if ((BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return 0;
	sock = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk || BPF_CORE_READ(sk, __sk_common.skc_state) != SYNQUEUE_TCP_LISTEN)
		return 0;
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	info.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (info.family != AF_INET && info.family != AF_INET6)
		return 0;
	fill_info(&info, sk);
	info.pid = BPF_CORE_READ(task, tgid);
	BPF_CORE_READ_STR_INTO(&info.comm, task, group_leader, comm);
	figures_of(&now, &info);
	w = walk_ctl();
	if (!w)
		bpf_seq_write(seq, &info, sizeof(info));
	else if (!known_to_walk(w, info.sk, &now))
		write_file_listener(seq, w, &info, &now);
	return 0;
}
