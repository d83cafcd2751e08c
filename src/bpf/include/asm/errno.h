/* <bpf/usdt.bpf.h> includes <linux/errno.h>, which includes <asm/errno.h>:
 * an arch-specific header that is not on the BPF target's include path
 * (it lives under /usr/include/<triplet>/). BPF programs only need the
 * generic numbers, which every Linux arch shares for these. */
#ifndef RBTRACE_ASM_ERRNO_H
#define RBTRACE_ASM_ERRNO_H
#ifndef ENOENT
#define ENOENT 2
#endif
#ifndef ESRCH
#define ESRCH 3
#endif
#ifndef E2BIG
#define E2BIG 7
#endif
#ifndef EINVAL
#define EINVAL 22
#endif
#endif
