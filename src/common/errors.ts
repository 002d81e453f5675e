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

/** The build or boot of what was asked for failed for reasons that are not the tests' own. */
export class InfraError extends KhilError {
  constructor(
    message: string,
    readonly stage: string,
  ) {
    super(message, 1);
    this.name = "InfraError";
  }
}
