/**
 * Errors a user can act on. They are printed as one line without a stack trace; `exitCode` separates
 * usage and configuration mistakes (2) from test failures (1), so scripts such as `git bisect run` can tell
 * them apart.
 */
export class KhilError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 2,
  ) {
    super(message);
    this.name = "KhilError";
  }
}

/** Whose fault a failure is (report/fault.ts): the kernel under test's, a test's, or the machine's. */
export type FaultClass = "kernel" | "test" | "harness";

/**
 * A stage of khil's (build, boot, push...) failed for reasons that are not the tests' own. `fault` says whose
 * it was when the stage can tell (a compile error is the kernel's, a full disk the host's); else fault.ts
 * decides by the stage.
 */
export class InfraError extends KhilError {
  constructor(
    message: string,
    readonly stage: string,
    readonly fault?: FaultClass,
  ) {
    super(message, 1);
    this.name = "InfraError";
  }
}
