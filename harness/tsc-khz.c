/*
 * Prints the host's TSC rate in kHz, measured against CLOCK_MONOTONIC_RAW over 200 ms. Under TCG a
 * guest's RDTSC reads the host's TSC, so this is the rate khil gives an x86_64 guest (tsc_early_khz=)
 * instead of letting it calibrate against the emulated PIT, which fails when the host is busy.
 */
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <x86intrin.h>

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC_RAW, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(void)
{
	struct timespec nap = { 0, 200 * 1000 * 1000 };
	double t0 = now_ns();
	uint64_t c0 = __rdtsc();
	double t1;
	uint64_t c1;

	nanosleep(&nap, NULL);
	t1 = now_ns();
	c1 = __rdtsc();
	printf("%.0f\n", (double)(c1 - c0) / (t1 - t0) * 1e6);
	return 0;
}
