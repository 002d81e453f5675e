// SPDX-License-Identifier: GPL-2.0
/*
 * Provokes, on a --debug kernel, the reports LKDTM has no trigger for, so that khil's splat detector is
 * tested on real consoles (test/fixtures/console/x86_64-debug-*.log). Load it once per boot:
 * lockdep switches itself off after its first report.
 */
#include <linux/debug_locks.h>
#include <linux/delay.h>
#include <linux/hrtimer.h>
#include <linux/kfence.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

static char *trigger = "";
module_param(trigger, charp, 0444);
MODULE_PARM_DESC(trigger, "rcu-usage, unlock-balance, irq-inversion, held-to-user, atomic-sleep, exp-stall, kfence, kmemleak, unnamed-report, unnamed-lockdep");

static int __rcu *khil_rcu_ptr;

static void rcu_usage(void)
{
	/* An RCU-protected pointer read outside any read-side critical section. */
	pr_info("khil_splat: %p\n", rcu_dereference(khil_rcu_ptr));
}

static void unlock_balance(void)
{
	static struct lock_class_key key;
	static struct lockdep_map map;

	lockdep_init_map(&map, "khil_splat_map", &key, 0);
	lock_map_release(&map);
}

static DEFINE_SPINLOCK(lock_a);
static DEFINE_SPINLOCK(lock_b);
static struct hrtimer irq_timer;
static DECLARE_COMPLETION(irq_done);

static enum hrtimer_restart take_a_in_irq(struct hrtimer *t)
{
	spin_lock(&lock_a);
	spin_unlock(&lock_a);
	complete(&irq_done);
	return HRTIMER_NORESTART;
}

static void irq_inversion(void)
{
	/* B is taken with interrupts on, then under A; A only later turns out to be taken in hard irq. */
	spin_lock(&lock_b);
	spin_unlock(&lock_b);
	spin_lock_irq(&lock_a);
	spin_lock(&lock_b);
	spin_unlock(&lock_b);
	spin_unlock_irq(&lock_a);

	hrtimer_init(&irq_timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL_HARD);
	irq_timer.function = take_a_in_irq;
	hrtimer_start(&irq_timer, ms_to_ktime(1), HRTIMER_MODE_REL_HARD);
	wait_for_completion(&irq_done);
}

static DEFINE_MUTEX(held_mutex);

static void atomic_sleep(void)
{
	void *p;

	/* A GFP_KERNEL allocation may sleep: not with preemption off. */
	preempt_disable();
	p = kmalloc(64, GFP_KERNEL);
	preempt_enable();
	kfree(p);
}

static int spin_preempt_off(void *unused)
{
	preempt_disable();
	mdelay(6000);
	preempt_enable();
	return 0;
}

static void exp_stall(void)
{
	unsigned int other = cpumask_any_but(cpu_online_mask, raw_smp_processor_id());
	struct task_struct *t;

	if (other >= nr_cpu_ids) {
		pr_err("khil_splat: exp-stall needs a second CPU\n");
		return;
	}
	t = kthread_create(spin_preempt_off, NULL, "khil_spin");
	if (IS_ERR(t))
		return;
	kthread_bind(t, other);
	wake_up_process(t);
	msleep(200);
	/* The spinning CPU cannot report a quiescent state: the expedited grace period stalls on it. */
	synchronize_rcu_expedited();
}

static void kfence_oob(void)
{
	const size_t size = 32;
	unsigned long deadline = jiffies + 20 * HZ;
	char *p;

	/* KFENCE takes one allocation per sample interval: allocate until one of them is KFENCE's. */
	while (time_before(jiffies, deadline)) {
		p = kmalloc(size, GFP_KERNEL);
		if (p && is_kfence_address(p)) {
			/* The object sits against one of its guard pages: read the byte just past that edge. */
			char *edge = offset_in_page(p) ? p + size : p - 1;

			pr_info("khil_splat: read %d\n", READ_ONCE(*edge));
			kfree(p);
			return;
		}
		kfree(p);
		usleep_range(500, 1000);
	}
	pr_err("khil_splat: no KFENCE allocation in 20 s\n");
}

static char *khil_leak;

static noinline void kmemleak_leak(void)
{
	/*
	 * The only reference is dropped at once: kmemleak's next scan (5 s later at the earliest) reports the
	 * object. A local would do too, but a stale copy of it on a cached kernel stack can hide the leak.
	 */
	WRITE_ONCE(khil_leak, kmalloc(128, GFP_KERNEL));
	if (khil_leak)
		strscpy(khil_leak, "khil_splat leaked this", 128);
	WRITE_ONCE(khil_leak, NULL);
}

static void held_to_user(void)
{
	/* Returning to insmod with it held is the report. */
	mutex_lock(&held_mutex);
}

/*
 * A report in words no pattern of khil's knows, tainting the kernel as a WARN does: what a new kind of
 * kernel report looks like to khil. Its bookkeeping check (parse/taint.ts) must fail the run all the same.
 */
static void unnamed_report(void)
{
	pr_err("khil_splat: something went wrong, in words no pattern knows\n");
	add_taint(TAINT_WARN, LOCKDEP_STILL_OK);
}

/*
 * A lockdep report in words no pattern of khil's knows. lockdep reports by turning itself off
 * (debug_locks_off(), as every report of lockdep.c does first) and printing; it taints nothing, so only
 * debug_locks in /proc/lockdep_stats tells. Needs a lockdep kernel (--debug).
 */
static void unnamed_lockdep(void)
{
	if (debug_locks_off())
		pr_err("khil_splat: lockdep found a locking bug, in words no pattern knows\n");
}

static const struct {
	const char *name;
	void (*provoke)(void);
} triggers[] = {
	{ "rcu-usage", rcu_usage },	  { "unlock-balance", unlock_balance },
	{ "irq-inversion", irq_inversion }, { "held-to-user", held_to_user },
	{ "atomic-sleep", atomic_sleep }, { "exp-stall", exp_stall },
	{ "kfence", kfence_oob },	  { "kmemleak", kmemleak_leak },
	{ "unnamed-report", unnamed_report }, { "unnamed-lockdep", unnamed_lockdep },
};

static int __init khil_splat_init(void)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(triggers); i++) {
		if (!strcmp(trigger, triggers[i].name)) {
			triggers[i].provoke();
			return 0;
		}
	}
	pr_err("khil_splat: unknown trigger '%s'\n", trigger);
	return -EINVAL;
}
module_init(khil_splat_init);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("khil: provokes kernel reports for khil's splat fixtures");
