/** Progress and status lines go to stderr so that stdout stays for results (`--json`, a guest command). */
export function log(line: string): void {
  process.stderr.write(`khil: ${line}\n`);
}
