/* SPDX-License-Identifier: GPL-2.0 */
/* What timer_probe.bpf.c and timer_probe.c share: bpf_timer_start's flags and the record of a callback run. */
#ifndef TIMER_PROBE_H
#define TIMER_PROBE_H

/*
 * bpf_timer_start's flags (uapi, added in 6.7). probe.mk defines HAVE_BPF_F_TIMER_* from the tree's own
 * include/uapi/linux/bpf.h; the values are uapi and never change, so they need not come from a header
 * that older trees lack.
 */
#define KHIL_TIMER_ABS (1ULL << 0)
#define KHIL_TIMER_CPU_PIN (1ULL << 1)

/* What one callback run saw, sent through the ring buffer when measuring. */
struct fired_rec {
	/* bpf_ktime_get_ns() in the callback minus the expiry it was armed for: negative is early */
	__s64 late;
	/* bpf_ktime_get_ns() in the callback */
	__u64 at;
	/* which start it belongs to (the user program numbers them), and the CPUs that ran and armed it */
	__u32 seq;
	__u32 cpu;
	__u32 arm_cpu;
	__u32 pad;
};

#endif
