// SPDX-License-Identifier: GPL-2.0
/*
 * khil's probe of the BPF timer series, run in the guest; prints KTAP. Each check loads its own copy of
 * timer_probe.bpf.o, so that no timer of one check is still armed in the next. Usage:
 *   timer_probe [-n LATENCY_SAMPLES] [-r ATTEMPTS] [CHECK_GLOB]...
 * A check that could not tell (the host stalled the guest at the wrong moment) is run again, up to ATTEMPTS
 * times in all (default 3); one that failed is never run again: a failure is never hidden by a retry.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <sched.h>
#include <sys/prctl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "timer_probe.h"
#include "timer_probe.skel.h"

enum kind { ARRAY, HASH, LRU_HASH, INNER };
static const int key_of[] = { [ARRAY] = 0, [HASH] = HASH, [LRU_HASH] = LRU_HASH, [INNER] = 0 };

#define MS 1000000ULL
/* Generous against a loaded host under TCG: a timer that fires late passes, one that never fires does not. */
#define FIRE_WAIT_MS 3000
/* The delay of a timer that must not fire, and how long the check watches for it. */
#define LONG_DELAY (300 * MS)
#define WATCH_MS 600

static bool failed;
/* The first failure's message, repeated on the check's result line (khil reports it as the reason). */
static char first_failure[256];
/* Why a check could not tell (the host stalled the guest past a timer's expiry): run again, then a skip. */
static char inconclusive[256];
/* Why a check does not apply to this kernel (a flag its tree does not have): a skip, not run again. */
static char not_here[256];
static char libbpf_log[1 << 16];
static size_t libbpf_log_len;

static void check(bool ok, const char *fmt, ...)
{
	va_list ap;

	if (ok)
		return;
	if (!failed) {
		va_start(ap, fmt);
		vsnprintf(first_failure, sizeof(first_failure), fmt, ap);
		va_end(ap);
	}
	failed = true;
	printf("    # FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* libbpf's messages (the verifier's log among them) are kept for the check that reads them, and printed. */
static int on_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *text;
	int n;

	if (level == LIBBPF_DEBUG)
		return 0;
	n = vasprintf(&text, fmt, ap);
	if (n < 0)
		return 0;
	if (libbpf_log_len + n < sizeof(libbpf_log)) {
		memcpy(libbpf_log + libbpf_log_len, text, n + 1);
		libbpf_log_len += n;
	}
	for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n"))
		printf("    # %s\n", l);
	free(text);
	return 0;
}

static long long now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

/*
 * A check that arms a LONG_DELAY timer and then takes it away (cancel, delete, overwrite, last reference)
 * proves nothing if the guest was stalled until the timer expired in between: the timer then fired, or was
 * idle when cancelled, legitimately. Asked right after the taking away and before anything that depends on
 * it is checked: a stall is named (and the check run again), never failed.
 */
static bool stalled(long long armed_at, const char *what)
{
	long long took = now_ns() - armed_at;

	if (took < (long long)LONG_DELAY / 2)
		return false;
	snprintf(inconclusive, sizeof(inconclusive),
		 "%lld ms passed between arming a %llu ms timer and %s (the host stalled the guest)",
		 took / 1000000, LONG_DELAY / MS, what);
	return true;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * The end of a check that armed a LONG_DELAY timer at `armed_at` and took it away by `what`: the callback
 * must not run while WATCH_MS passes. `ran` names what would have run, for the failure's message.
 */
static void never_fires(long long armed_at, const char *what, volatile __u32 *count, const char *ran)
{
	if (stalled(armed_at, what))
		return;
	sleep_ms(WATCH_MS);
	check(*count == 0, "%s %u times", ran, *count);
}

/* One BPF_PROG_TEST_RUN of an XDP program on a zeroed packet: its return value, or -errno. */
static int run_fd(int prog_fd)
{
	char pkt[64] = {};
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = sizeof(pkt), .repeat = 1);

	if (bpf_prog_test_run_opts(prog_fd, &o))
		return -errno;
	return o.retval;
}

static int run(struct bpf_program *prog)
{
	return run_fd(bpf_program__fd(prog));
}

static bool wait_fired(volatile __u32 *count, __u32 want)
{
	for (int i = 0; i < FIRE_WAIT_MS && *count < want; i++)
		sleep_ms(1);
	return *count >= want;
}

static struct timer_probe *load(void)
{
	struct timer_probe *s = timer_probe__open_and_load();

	check(s, "loading timer_probe.bpf.o: %s", strerror(errno));
	return s;
}

static void arm_ok(struct timer_probe *s, enum kind k, __u64 delay, long want_init)
{
	int r;

	struct bpf_program *arm[] = {
		[ARRAY] = s->progs.arm_array,
		[HASH] = s->progs.arm_hash,
		[LRU_HASH] = s->progs.arm_lru_hash,
		[INNER] = s->progs.arm_inner,
	};

	s->bss->kind = k;
	s->bss->delay_ns = delay;
	r = run(arm[k]);
	check(r == XDP_PASS, "the arming program returned %d", r);
	check(s->bss->init_ret == want_init, "bpf_timer_init returned %lld, expected %ld",
	      (long long)s->bss->init_ret, want_init);
	check(s->bss->set_callback_ret == 0, "bpf_timer_set_callback returned %lld",
	      (long long)s->bss->set_callback_ret);
	check(s->bss->start_ret == 0, "bpf_timer_start returned %lld", (long long)s->bss->start_ret);
}

/* init, set_callback, start on one map's element; it fires once, with its key; a second init is -EBUSY. */
static void fires_in(enum kind k)
{
	struct timer_probe *s = load();

	if (!s)
		return;
	arm_ok(s, k, 1 * MS, 0);
	check(wait_fired(&s->bss->fired[k], 1), "the callback did not run within %d ms", FIRE_WAIT_MS);
	sleep_ms(20);
	check(s->bss->fired[k] == 1, "the callback ran %u times for one start", s->bss->fired[k]);
	check(s->bss->fired_key[k] == key_of[k], "the callback got key %d, expected %d", s->bss->fired_key[k],
	      key_of[k]);
	arm_ok(s, k, 1 * MS, -EBUSY);
	check(wait_fired(&s->bss->fired[k], 2), "restarted, the callback did not run again");
	timer_probe__destroy(s);
}

static void t_array(void) { fires_in(ARRAY); }
static void t_hash(void) { fires_in(HASH); }
static void t_lru_hash(void) { fires_in(LRU_HASH); }
static void t_inner_map(void) { fires_in(INNER); }

/* bpf_timer_cancel of an armed timer returns 1 and the callback never runs; of an idle one, 0. */
static void t_cancel(void)
{
	struct timer_probe *s = load();
	long long t0;

	if (!s)
		return;
	t0 = now_ns();
	arm_ok(s, ARRAY, LONG_DELAY, 0);
	run(s->progs.cancel);
	if (stalled(t0, "cancelling it"))
		goto out;
	check(s->bss->cancel_ret == 1, "bpf_timer_cancel of an armed timer returned %lld, expected 1",
	      (long long)s->bss->cancel_ret);
	never_fires(t0, "cancelling it", &s->bss->fired[ARRAY], "a cancelled timer's callback ran");
	run(s->progs.cancel);
	check(s->bss->cancel_ret == 0, "bpf_timer_cancel of an idle timer returned %lld, expected 0",
	      (long long)s->bss->cancel_ret);
out:
	timer_probe__destroy(s);
}

/* A running timer cannot be cancelled by its own callback: that would wait for itself (-EDEADLK). */
static void t_cancel_in_callback(void)
{
	struct timer_probe *s = load();

	if (!s)
		return;
	s->bss->cancel_self = 1;
	arm_ok(s, ARRAY, 1 * MS, 0);
	check(wait_fired(&s->bss->fired[ARRAY], 1), "the callback did not run within %d ms", FIRE_WAIT_MS);
	run(s->progs.read_cancel_self);
	check(s->bss->cancel_ret == -EDEADLK, "bpf_timer_cancel in its own callback returned %lld, expected %d",
	      (long long)s->bss->cancel_ret, -EDEADLK);
	timer_probe__destroy(s);
}

/* Deleting a hash element, or overwriting an array element, cancels the timer in it. */
static void t_map_delete(void)
{
	struct timer_probe *s = load();
	int key = key_of[HASH];
	long long t0;

	if (!s)
		return;
	t0 = now_ns();
	arm_ok(s, HASH, LONG_DELAY, 0);
	check(!bpf_map_delete_elem(bpf_map__fd(s->maps.hash), &key), "deleting the element: %s",
	      strerror(errno));
	never_fires(t0, "deleting its element", &s->bss->fired[HASH], "the timer of a deleted element fired");
	timer_probe__destroy(s);
}

static void t_map_update(void)
{
	struct timer_probe *s = load();
	int key = 0;
	void *zero;
	long long t0;

	if (!s)
		return;
	zero = calloc(1, bpf_map__value_size(s->maps.array));
	t0 = now_ns();
	arm_ok(s, ARRAY, LONG_DELAY, 0);
	check(!bpf_map_update_elem(bpf_map__fd(s->maps.array), &key, zero, BPF_ANY),
	      "overwriting the element: %s", strerror(errno));
	never_fires(t0, "overwriting its element", &s->bss->fired[ARRAY],
		    "the timer of an overwritten element fired");
	free(zero);
	timer_probe__destroy(s);
}

/*
 * The series' usercnt rule: when the last user-space reference to a map goes (only a program holds it),
 * its timers are cancelled, and bpf_timer_init there fails with -EPERM. The program and the globals
 * outlive the object through duplicated descriptors.
 */
static void t_usercnt(void)
{
	struct timer_probe *s = load();
	struct timer_probe__bss after;
	int prog, bss, zero = 0;
	long long t0;
	bool late;

	if (!s)
		return;
	t0 = now_ns();
	arm_ok(s, ARRAY, LONG_DELAY, 0);
	prog = dup(bpf_program__fd(s->progs.arm_array));
	bss = dup(bpf_map__fd(s->maps.bss));
	timer_probe__destroy(s);
	late = stalled(t0, "closing the map's last user reference");
	sleep_ms(WATCH_MS);
	check(!bpf_map_lookup_elem(bss, &zero, &after), "reading the globals: %s", strerror(errno));
	check(late || after.fired[ARRAY] == 0, "the timer of a map without user references fired %u times",
	      after.fired[ARRAY]);
	check(run_fd(prog) >= 0, "running the program again: %s", strerror(errno));
	check(!bpf_map_lookup_elem(bss, &zero, &after), "reading the globals: %s", strerror(errno));
	check(after.init_ret == -EPERM, "bpf_timer_init in a map without user references returned %lld, expected %d",
	      (long long)after.init_ret, -EPERM);
	close(prog);
	close(bss);
}

/*
 * Timers armed one at a time on the array's element, each start numbered: a callback run carrying an earlier
 * start's number is an extra run of that start (one start must give one run).
 */
struct sampler {
	struct timer_probe *s;
	struct ring_buffer *rb;
	struct fired_rec queue[64];
	int queued;
	__u32 seq;
	int extra;
	struct fired_rec first_extra;
};

static int on_fired(void *ctx, void *data, size_t size)
{
	struct sampler *sp = ctx;

	if (size == sizeof(struct fired_rec) && sp->queued < (int)(sizeof(sp->queue) / sizeof(sp->queue[0])))
		memcpy(&sp->queue[sp->queued++], data, size);
	return 0;
}

static bool sampler_open(struct sampler *sp)
{
	memset(sp, 0, sizeof(*sp));
	sp->s = load();
	if (!sp->s)
		return false;
	sp->rb = ring_buffer__new(bpf_map__fd(sp->s->maps.late), on_fired, sp, NULL);
	check(sp->rb, "ring buffer: %s", strerror(errno));
	sp->s->bss->measure = 1;
	return sp->rb;
}

static void sampler_close(struct sampler *sp)
{
	ring_buffer__free(sp->rb);
	timer_probe__destroy(sp->s);
}

/* The next callback run, waiting up to `ms`; false when none came. */
static bool next_run(struct sampler *sp, int ms, struct fired_rec *r)
{
	long long until = now_ns() + ms * (long long)MS;

	while (!sp->queued && now_ns() < until) {
		int n = ring_buffer__poll(sp->rb, 10);

		if (n < 0 && n != -EINTR)
			break;
	}
	/* a record that came as the wait ended */
	if (!sp->queued)
		ring_buffer__consume(sp->rb);
	if (!sp->queued)
		return false;
	*r = sp->queue[0];
	memmove(sp->queue, sp->queue + 1, --sp->queued * sizeof(sp->queue[0]));
	return true;
}

static void count_extra(struct sampler *sp, const struct fired_rec *r)
{
	if (!sp->extra++)
		sp->first_extra = *r;
}

/* Arms one timer (relative, or absolute at now + delay with KHIL_TIMER_ABS) and waits for its callback. */
static bool sample(struct sampler *sp, __u64 delay, __u64 flags, struct fired_rec *r)
{
	sp->s->bss->seq = ++sp->seq;
	sp->s->bss->start_flags = flags;
	arm_ok(sp->s, ARRAY, delay, sp->seq == 1 ? 0 : -EBUSY);
	if (failed)
		return false;
	while (next_run(sp, FIRE_WAIT_MS, r)) {
		if (r->seq == sp->seq)
			return true;
		count_extra(sp, r);
	}
	check(false, "a timer armed for %.1f us did not fire within %d ms", delay / 1e3, FIRE_WAIT_MS);
	return false;
}

/* Delay number i of n, spread log-uniformly over [lo, hi] ns in a fixed order that mixes short and long. */
static __u64 spread(int i, int n, double lo, double hi)
{
	int j = (int)((i * 7919LL) % n);

	return (__u64)(lo * pow(hi / lo, n > 1 ? (double)j / (n - 1) : 0));
}

/* Callbacks that ran before their expiry: how many, and the earliest, for the failure's message. */
struct early {
	int n;
	long long worst;
	__u64 worst_delay;
};

static void note_early(struct early *e, const struct fired_rec *r, __u64 delay)
{
	if (r->late >= 0)
		return;
	e->n++;
	if (r->late < e->worst) {
		e->worst = r->late;
		e->worst_delay = delay;
	}
}

static void check_never_early(const struct early *e, int n, const char *what)
{
	check(!e->n, "%d of %d %s callbacks ran before their expiry: the earliest %.1f us early (armed for %.1f us)",
	      e->n, n, what, -e->worst / 1e3, e->worst_delay / 1e3);
}

#define EARLY_SAMPLES 300

/*
 * The hrtimer contract: a callback never runs before the expiry it was armed for, on the timer's clock
 * (CLOCK_MONOTONIC: the callback's bpf_ktime_get_ns() against the arming program's reading plus the delay).
 * Delays from 1 us, where an expiry already past when armed is the edge a rounding bug breaks, to 2 ms.
 */
static void never_early(__u64 flags, const char *what)
{
	struct sampler sp;
	struct early e = {};
	struct fired_rec r;
	int n = 0;

	if (!sampler_open(&sp))
		goto out;
	for (int i = 0; i < EARLY_SAMPLES; i++) {
		__u64 delay = spread(i, EARLY_SAMPLES, 1e3, 2e6);

		if (!sample(&sp, delay, flags, &r))
			break;
		n++;
		note_early(&e, &r, delay);
	}
	check_never_early(&e, n, what);
out:
	sampler_close(&sp);
}

static void t_never_early(void) { never_early(0, "relative"); }

static void t_never_early_abs(void)
{
#ifdef HAVE_BPF_F_TIMER_ABS
	never_early(KHIL_TIMER_ABS, "BPF_F_TIMER_ABS");
#else
	snprintf(not_here, sizeof(not_here),
		 "the tree's include/uapi/linux/bpf.h has no BPF_F_TIMER_ABS (bpf_timer_start's flags came in 6.7)");
#endif
}

/* A BPF_F_TIMER_CPU_PIN timer's callback runs on the CPU that armed it, armed from each online CPU in turn. */
static void t_pinned(void)
{
#ifdef HAVE_BPF_F_TIMER_CPU_PIN
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct sampler sp;
	struct fired_rec r, wrong = {};
	cpu_set_t all, one;
	int n = 0, moved = 0;

	if (cpus < 2) {
		snprintf(not_here, sizeof(not_here), "one CPU online: no other CPU for a callback to run on");
		return;
	}
	sched_getaffinity(0, sizeof(all), &all);
	if (!sampler_open(&sp))
		goto out;
	for (int cpu = 0; cpu < cpus && !failed; cpu++) {
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		if (sched_setaffinity(0, sizeof(one), &one))
			continue;
		for (int i = 0; i < 50; i++) {
			if (!sample(&sp, spread(i, 50, 50e3, 2e6), KHIL_TIMER_CPU_PIN, &r))
				break;
			n++;
			check(r.arm_cpu == (__u32)cpu, "the arming program ran on CPU %u, not on CPU %d its thread is bound to",
			      r.arm_cpu, cpu);
			if (r.cpu != r.arm_cpu && !moved++)
				wrong = r;
		}
	}
	sched_setaffinity(0, sizeof(all), &all);
	check(n > 0, "no CPU could be armed from");
	check(!moved, "%d of %d pinned callbacks ran on another CPU than the one that armed them: first armed on CPU %u, ran on CPU %u",
	      moved, n, wrong.arm_cpu, wrong.cpu);
out:
	sampler_close(&sp);
#else
	snprintf(not_here, sizeof(not_here),
		 "the tree's include/uapi/linux/bpf.h has no BPF_F_TIMER_CPU_PIN (bpf_timer_start's flags came in 6.7)");
#endif
}

/* One start, one callback run: a run carrying an earlier start's number, even after the next start, is extra. */
static void t_once(void)
{
	struct sampler sp;
	struct fired_rec r;
	int n = 0;

	if (!sampler_open(&sp))
		goto out;
	for (; n < EARLY_SAMPLES; n++)
		if (!sample(&sp, spread(n, EARLY_SAMPLES, 10e3, 1e6), 0, &r))
			break;
	/* the last start's second run, if any, comes within this */
	while (next_run(&sp, 50, &r))
		count_extra(&sp, &r);
	check(!sp.extra, "%d extra callback runs for %d starts: start #%u ran again %.1f us after its expiry", sp.extra,
	      n, sp.first_extra.seq, sp.first_extra.late / 1e3);
out:
	sampler_close(&sp);
}

/*
 * A callback that starts its own timer again, five times: six runs, each at least the period (1 ms) after the
 * one before and none before its expiry, then no more.
 */
static void t_rearm(void)
{
	const __u64 period = 1 * MS;
	struct sampler sp;
	struct fired_rec r[7];
	struct early e = {};
	int n = 0;

	if (!sampler_open(&sp))
		goto out;
	sp.s->bss->rearm = 5;
	sp.s->bss->seq = 1;
	arm_ok(sp.s, ARRAY, period, 0);
	while (n < 7 && next_run(&sp, n < 6 ? FIRE_WAIT_MS : 50, &r[n]))
		n++;
	check(n == 6, "the callback ran %d times, expected 6", n);
	for (int i = 0; i < n; i++) {
		note_early(&e, &r[i], period);
		if (i)
			check(r[i].at - r[i - 1].at >= period,
			      "run %d came %.1f us after the one before, sooner than the %.1f us period", i + 1,
			      (r[i].at - r[i - 1].at) / 1e3, period / 1e3);
	}
	check_never_early(&e, n, "re-armed");
out:
	sampler_close(&sp);
}

struct samples {
	long long *ns;
	int n;
};

static int by_value(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

/* Nearest rank: the smallest sample with at least p of them at or below it. */
static long long rank(const struct samples *s, double p)
{
	int i = (int)ceil(p * s->n) - 1;

	return s->ns[i < 0 ? 0 : i];
}

/* The line khil reads (src/parse/measures.ts); `baseline` names the measurement to compare with. */
static void report(const char *name, struct samples *s, const char *baseline)
{
	qsort(s->ns, s->n, sizeof(*s->ns), by_value);
	printf("    # khil-measure: %s unit=ns n=%d min=%lld p25=%lld p50=%lld p75=%lld p99=%lld max=%lld%s%s\n", name,
	       s->n, s->ns[0], rank(s, 0.25), rank(s, 0.5), rank(s, 0.75), rank(s, 0.99), s->ns[s->n - 1],
	       baseline ? " baseline=" : "", baseline ? baseline : "");
}

static int latency_samples = 1000;

/* How late a user-space clock_nanosleep(TIMER_ABSTIME) wakes against the expiry it asked for. */
static long long user_sample(__u64 delay)
{
	struct timespec t, now;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_nsec += delay;
	t.tv_sec += t.tv_nsec / 1000000000;
	t.tv_nsec %= 1000000000;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR)
		;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t.tv_sec) * 1000000000LL + (now.tv_nsec - t.tv_nsec);
}

/*
 * How late a bpf_timer callback runs against the expiry it was armed for, paired with how late a user-space
 * clock_nanosleep wakes against its own, in the same guest and the same way: one timer at a time, delays
 * spread log-uniformly over 100 us..10 ms in a fixed order, the two taken one right after the other (taking
 * turns at going first), so that both see the same host. khil judges the paired differences
 * (bpf_timer_excess) against the suite's bounds; here a callback before its expiry fails at once.
 */
static void t_latency(void)
{
	int n = latency_samples;
	struct samples bpf = { calloc(n, sizeof(long long)), 0 }, user = { calloc(n, sizeof(long long)), 0 },
		       excess = { calloc(n, sizeof(long long)), 0 };
	struct early e = {};
	struct sampler sp;
	struct fired_rec r;

	if (!sampler_open(&sp))
		goto out;
	for (int i = 0; i < n; i++) {
		__u64 delay = spread(i, n, 100e3, 10e6);
		long long u = i % 2 ? user_sample(delay) : 0;

		if (!sample(&sp, delay, 0, &r))
			break;
		if (i % 2 == 0)
			u = user_sample(delay);
		note_early(&e, &r, delay);
		bpf.ns[bpf.n++] = r.late;
		user.ns[user.n++] = u;
		excess.ns[excess.n++] = r.late - u;
	}
	check_never_early(&e, bpf.n, "measured");
	if (!failed) {
		report("bpf_timer_latency", &bpf, "user_hrtimer_latency");
		report("user_hrtimer_latency", &user, NULL);
		report("bpf_timer_excess", &excess, NULL);
	}
out:
	sampler_close(&sp);
	free(bpf.ns);
	free(user.ns);
	free(excess.ns);
}

/* Loads the object with only `only` of its programs; the load's error, 0 when it loaded. */
static int load_only(const char *only)
{
	struct timer_probe *s = timer_probe__open();
	struct bpf_program *p;
	int err;

	if (!s)
		return -errno;
	bpf_object__for_each_program(p, s->obj)
		bpf_program__set_autoload(p, !strcmp(bpf_program__name(p), only));
	libbpf_log_len = 0;
	libbpf_log[0] = 0;
	err = timer_probe__load(s);
	timer_probe__destroy(s);
	return err;
}

/*
 * Without the JIT the verifier must refuse every program that sets a timer callback ("callbacks are not
 * allowed in non-JITed programs", fixup_call_args()): each arming program is loaded alone, and one that
 * loads is a failure. A timer program without a callback (cancel) must still load: the interpreter runs,
 * only callbacks are refused.
 */
static void t_refused_without_jit(void)
{
	static const char *const arming[] = { "arm_array", "arm_hash", "arm_lru_hash", "arm_inner" };

	for (unsigned i = 0; i < sizeof(arming) / sizeof(arming[0]); i++) {
		int err = load_only(arming[i]);

		check(err, "%s loaded with the JIT off", arming[i]);
		check(!err || strstr(libbpf_log, "callbacks are not allowed in non-JITed programs"),
		      "%s was refused, but not with the verifier's \"callbacks are not allowed in non-JITed programs\"",
		      arming[i]);
	}
	check(!load_only("cancel"), "cancel (no callback) did not load with the JIT off");
}

/* Which JIT setting a check needs: on (1 or 2, bpf_jit_enable) or off (0). */
enum jit { JIT_ON, JIT_OFF };

static const struct {
	const char *name;
	void (*run)(void);
	enum jit jit;
} checks[] = {
	{ "array", t_array, JIT_ON },
	{ "hash", t_hash, JIT_ON },
	{ "lru_hash", t_lru_hash, JIT_ON },
	{ "inner_map", t_inner_map, JIT_ON },
	{ "rearm", t_rearm, JIT_ON },
	{ "once", t_once, JIT_ON },
	{ "never_early", t_never_early, JIT_ON },
	{ "never_early_abs", t_never_early_abs, JIT_ON },
	{ "pinned", t_pinned, JIT_ON },
	{ "cancel", t_cancel, JIT_ON },
	{ "cancel_in_callback", t_cancel_in_callback, JIT_ON },
	{ "map_delete", t_map_delete, JIT_ON },
	{ "map_update", t_map_update, JIT_ON },
	{ "usercnt", t_usercnt, JIT_ON },
	{ "latency", t_latency, JIT_ON },
	{ "refused_without_jit", t_refused_without_jit, JIT_OFF },
};

static enum jit jit_in_force(void)
{
	FILE *f = fopen("/proc/sys/net/core/bpf_jit_enable", "r");
	int v = 1;

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = 1;
		fclose(f);
	}
	return v ? JIT_ON : JIT_OFF;
}

#define NCHECKS (int)(sizeof(checks) / sizeof(checks[0]))

static bool selected(const char *name, char **globs, int nglobs)
{
	if (!nglobs)
		return true;
	for (int i = 0; i < nglobs; i++)
		if (!fnmatch(globs[i], name, 0))
			return true;
	return false;
}

static int attempts = 3;

/*
 * Runs one check, again while it was inconclusive (up to `attempts` in all), and prints its result: a failure
 * ends it at once and stays a failure. Returns 1 passed, 0 skipped, -1 failed; *unsure is set when it was
 * still inconclusive on its last attempt.
 */
static int run_check(int number, int i, bool *unsure)
{
	const char *name = checks[i].name;

	for (int attempt = 1;; attempt++) {
		failed = false;
		first_failure[0] = inconclusive[0] = not_here[0] = 0;
		libbpf_log_len = 0;
		libbpf_log[0] = 0;
		checks[i].run();
		if (failed) {
			printf("    not ok %d %s # %s\n", number, name, first_failure);
			return -1;
		}
		if (not_here[0]) {
			printf("    ok %d %s # SKIP %s\n", number, name, not_here);
			return 0;
		}
		if (!inconclusive[0]) {
			printf("    ok %d %s\n", number, name);
			return 1;
		}
		printf("    # attempt %d of %d inconclusive: %s\n", attempt, attempts, inconclusive);
		if (attempt == attempts) {
			*unsure = true;
			printf("    ok %d %s # SKIP inconclusive on all %d attempts: %s\n", number, name, attempts,
			       inconclusive);
			return 0;
		}
	}
}

int main(int argc, char **argv)
{
	int opt, planned = 0, number = 0, nfailed = 0, npassed = 0;
	bool unsure = false;
	enum jit jit = jit_in_force();

	while ((opt = getopt(argc, argv, "n:r:")) != -1) {
		if (opt == 'n' && (latency_samples = atoi(optarg)) >= 1)
			continue;
		if (opt == 'r' && (attempts = atoi(optarg)) >= 1)
			continue;
		fprintf(stderr, "usage: %s [-n LATENCY_SAMPLES] [-r ATTEMPTS] [CHECK_GLOB]...\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	libbpf_set_print(on_libbpf);
	/*
	 * The user-space baseline sleeps with the least slack a task may have (1 ns, not the default 50 us), so
	 * that it is a plain hrtimer's lateness, as a bpf_timer's is.
	 */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	/* A glob that selects nothing is a typo: say so as a failure, never as an empty pass. */
	for (int g = optind; g < argc; g++) {
		bool any = false;

		for (int i = 0; i < NCHECKS; i++)
			any |= !fnmatch(argv[g], checks[i].name, 0);
		if (!any) {
			printf("KTAP version 1\n1..1\n# no check matches '%s': valid are", argv[g]);
			for (int i = 0; i < NCHECKS; i++)
				printf("%s %s", i ? "," : "", checks[i].name);
			printf("\nnot ok 1 timer_probe\n");
			return 2;
		}
	}
	for (int i = 0; i < NCHECKS; i++)
		planned += selected(checks[i].name, argv + optind, argc - optind);
	/* One test, timer_probe, whose subtests are the checks: `timer_probe/cancel` as test_progs names them. */
	printf("KTAP version 1\n1..1\n    KTAP version 1\n    # Subtest: timer_probe\n    1..%d\n", planned);
	for (int i = 0; i < NCHECKS; i++) {
		int r;

		if (!selected(checks[i].name, argv + optind, argc - optind))
			continue;
		if (checks[i].jit != jit) {
			printf("    ok %d %s # SKIP %s\n", ++number, checks[i].name,
			       jit == JIT_ON ? "the JIT is on (bpf_jit_enable is not 0)"
					     : "the JIT is off: timer callbacks need it");
			continue;
		}
		r = run_check(++number, i, &unsure);
		nfailed += r < 0;
		npassed += r > 0;
	}
	/*
	 * The top level passes only if a check passed: a run of checks that all skipped tested nothing, and one
	 * whose checks stayed inconclusive says so (khil reports that as the host's fault, not the kernel's).
	 */
	if (nfailed)
		printf("not ok 1 timer_probe # %d of %d checks failed\n", nfailed, planned);
	else if (npassed)
		printf("ok 1 timer_probe\n");
	else if (unsure)
		printf("ok 1 timer_probe # SKIP inconclusive: no check passed, and at least one stayed inconclusive\n");
	else
		printf("ok 1 timer_probe # SKIP no check applies to this kernel\n");
	return nfailed ? 1 : 0;
}
