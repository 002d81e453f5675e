import { log } from "../common/log.ts";
import { stopTracked } from "../host/children.ts";
import { stopWaiting } from "../host/lock.ts";

/** Seconds each stage may take; `total` bounds a whole run (every arch or cell of one invocation). */
export interface Deadlines {
  build: number;
  boot: number;
  push: number;
  total: number;
}

/**
 * A cold kernel build here takes 15–40 min on 2 cores; boot to SSH 3–8 s under TCG. Each command's own
 * deadline is its `timeout` in the suite.
 */
export const DEFAULT_DEADLINES: Deadlines = { build: 7200, boot: 60, push: 120, total: 4 * 3600 };

/** CLI flags win over the suite's `timeouts`, which win over the defaults. */
export function resolveDeadlines(cli: Partial<Deadlines>, suite: Partial<Deadlines> = {}): Deadlines {
  const pick = (k: keyof Deadlines) => cli[k] ?? suite[k] ?? DEFAULT_DEADLINES[k];
  return { build: pick("build"), boot: pick("boot"), push: pick("push"), total: pick("total") };
}

/**
 * The whole run's deadline. On expiry every process khil started (make, QEMU) is stopped, so the stage in
 * progress fails at once; the stage then reports this timeout as its verdict, and the results gathered so
 * far are written as usual.
 */
export class RunDeadline {
  expired = false;
  constructor(readonly seconds: number) {
    const timer = setTimeout(() => {
      this.expired = true;
      log(`timeout: the whole run reached its ${seconds} s deadline; stopping`);
      stopWaiting(this.message);
      void stopTracked();
    }, seconds * 1000);
    timer.unref();
  }

  get message(): string {
    return `timeout: whole run after ${this.seconds} s`;
  }
}
