// SPDX-License-Identifier: GPL-2.0
/*
 * khil's own probe of the BPF timer series. Every program is XDP, run by BPF_PROG_TEST_RUN from
 * timer_probe.c: no fentry or tp_btf, so no BPF trampoline, which arm64 lacks before 6.4.
 * The user program says what to do through the globals below and reads back what happened.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "timer_probe.h"

#define CLOCK_MONOTONIC 1

char _license[] SEC("license") = "GPL";

/* Which map a program works on: the maps the series lets a timer live in. */
enum kind { ARRAY, HASH, LRU_HASH, INNER, KINDS };

struct elem {
	struct bpf_timer t;
	/* the map the element is in, for the callback's count */
	__u32 kind;
	/* re-arms left for the callback (the "rearm" check) */
	__u32 rearm;
	/* the callback cancels its own timer and records what that returned */
	__u32 cancel_self;
	__s64 cancel_self_ret;
	/* bpf_ktime_get_ns() the timer was asked to expire at, when measuring; 0 otherwise */
	__u64 expires;
	/* which start this is (the user program counts them) and the CPU that armed it */
	__u32 seq;
	__u32 arm_cpu;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, int);
	__type(value, struct elem);
} array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, int);
	__type(value, struct elem);
} hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4);
	__type(key, int);
	__type(value, struct elem);
} lru_hash SEC(".maps");

struct inner_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, int);
	__type(value, struct elem);
} inner SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, int);
	__array(values, struct inner_map);
} outer SEC(".maps") = {
	.values = { [0] = &inner },
};

/* One record per callback run, so that the user program can block until it ran, and see every extra run. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} late SEC(".maps");

/* Set by the user program before each run. */
__u32 kind;
__u64 delay_ns;
__u32 rearm;
__u32 cancel_self;
__u32 measure;
/* bpf_timer_start's flags (KHIL_TIMER_*); with KHIL_TIMER_ABS the program arms for now + delay_ns, absolute */
__u64 start_flags;
__u32 seq;

/* Written by the programs. */
__s64 init_ret;
__s64 set_callback_ret;
__s64 start_ret;
__s64 cancel_ret;
__u32 fired[KINDS];
int fired_key[KINDS];

static int fire(void *map, int *key, struct elem *v)
{
	__u64 now = bpf_ktime_get_ns();
	__u32 k = v->kind;

	if (k < KINDS) {
		__sync_fetch_and_add(&fired[k], 1);
		fired_key[k] = *key;
	}
	if (v->expires) {
		struct fired_rec r = {
			.late = now - v->expires,
			.at = now,
			.seq = v->seq,
			.cpu = bpf_get_smp_processor_id(),
			.arm_cpu = v->arm_cpu,
		};

		bpf_ringbuf_output(&late, &r, sizeof(r), 0);
	}
	if (v->cancel_self) {
		v->cancel_self = 0;
		v->cancel_self_ret = bpf_timer_cancel(&v->t);
	}
	if (v->rearm) {
		v->rearm--;
		/* the next run's expiry: no earlier than this, since hrtimer_start reads the clock after us */
		if (v->expires)
			v->expires = bpf_ktime_get_ns() + delay_ns;
		bpf_timer_start(&v->t, delay_ns, 0);
	}
	return 0;
}

/* A hash or LRU-hash element, created empty on first use. */
static __always_inline struct elem *hash_elem(void *map, int key)
{
	static const struct elem zero;
	struct elem *v = bpf_map_lookup_elem(map, &key);

	if (!v && !bpf_map_update_elem(map, &key, &zero, BPF_NOEXIST))
		v = bpf_map_lookup_elem(map, &key);
	return v;
}

static __always_inline struct elem *inner_elem(void **map)
{
	int key = 0;

	*map = bpf_map_lookup_elem(&outer, &key);
	return *map ? bpf_map_lookup_elem(*map, &key) : 0;
}

/* The element of the map `kind` names: hash keys are the kind itself, array indexes 0. */
static __always_inline struct elem *value(void)
{
	int key = 0;
	void *m;

	switch (kind) {
	case ARRAY:
		return bpf_map_lookup_elem(&array, &key);
	case HASH:
		return hash_elem(&hash, HASH);
	case LRU_HASH:
		return hash_elem(&lru_hash, LRU_HASH);
	case INNER:
		return inner_elem(&m);
	}
	return 0;
}

/*
 * Arms the timer of an element: init (again: -EBUSY after the first time), set_callback, start. The verifier
 * ties a timer to the map its element came from, so each map gets a program of its own, with `map` a
 * constant in it.
 */
static __always_inline int arm(struct elem *v, void *map)
{
	__u64 expires;

	if (!v)
		return XDP_ABORTED;
	init_ret = bpf_timer_init(&v->t, map, CLOCK_MONOTONIC);
	v->kind = kind;
	v->rearm = rearm;
	v->cancel_self = cancel_self;
	v->cancel_self_ret = 1;
	set_callback_ret = bpf_timer_set_callback(&v->t, fire);
	v->seq = seq;
	v->arm_cpu = bpf_get_smp_processor_id();
	/*
	 * A relative timer's expiry is the hrtimer's clock when bpf_timer_start reads it, plus the delay: no
	 * earlier than this reading plus the delay, so a callback before `expires` ran early. An absolute one's
	 * is `expires` itself.
	 */
	expires = bpf_ktime_get_ns() + delay_ns;
	v->expires = measure ? expires : 0;
	start_ret = bpf_timer_start(&v->t, start_flags & KHIL_TIMER_ABS ? expires : delay_ns, start_flags);
	return XDP_PASS;
}

SEC("xdp")
int arm_array(struct xdp_md *ctx)
{
	int key = 0;

	return arm(bpf_map_lookup_elem(&array, &key), &array);
}

SEC("xdp")
int arm_hash(struct xdp_md *ctx)
{
	return arm(hash_elem(&hash, HASH), &hash);
}

SEC("xdp")
int arm_lru_hash(struct xdp_md *ctx)
{
	return arm(hash_elem(&lru_hash, LRU_HASH), &lru_hash);
}

SEC("xdp")
int arm_inner(struct xdp_md *ctx)
{
	void *m;
	struct elem *v = inner_elem(&m);

	return m ? arm(v, m) : XDP_ABORTED;
}

SEC("xdp")
int cancel(struct xdp_md *ctx)
{
	struct elem *v = value();

	if (!v)
		return XDP_ABORTED;
	cancel_ret = bpf_timer_cancel(&v->t);
	return XDP_PASS;
}

/* What the callback's own bpf_timer_cancel returned, read where user space cannot see the element's timer. */
SEC("xdp")
int read_cancel_self(struct xdp_md *ctx)
{
	struct elem *v = value();

	if (!v)
		return XDP_ABORTED;
	cancel_ret = v->cancel_self_ret;
	return XDP_PASS;
}
