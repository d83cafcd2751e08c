// SPDX-License-Identifier: GPL-2.0
/* Never loaded: compiled only so that what rbtrace.bpf.h gives every tool
 * (its maps, the -- CMD fork-tracking programs, the .rodata filters) has a
 * typed skeleton, src/generated/rbtrace.ts, against which src/core's uses
 * of those names are checked (a rename here is a type error there). */
#include "rbtrace.bpf.h"
