import { log } from "./log.ts";

function fmtElapsed(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

/**
 * A progress line for long work: rewritten in place on a terminal, a plain line every `periodMs` otherwise
 * (a CI log must not fill up with carriage returns).
 */
export class Progress {
  private readonly start = Date.now();
  private lastPlain = 0;
  private readonly tty = Boolean(process.stderr.isTTY);
  private timer: NodeJS.Timeout | undefined;
  private text = "";

  constructor(
    private readonly label: string,
    private readonly periodMs = 30_000,
  ) {
    this.timer = setInterval(() => this.render(), this.tty ? 1000 : periodMs);
    this.timer.unref();
  }

  update(text: string): void {
    this.text = text;
    if (this.tty) this.render();
  }

  private render(): void {
    const line = `${this.label}: ${this.text} (${fmtElapsed(Date.now() - this.start)})`;
    if (this.tty) process.stderr.write(`\r\x1b[2K${line}`);
    else if (Date.now() - this.lastPlain >= this.periodMs - 50) {
      this.lastPlain = Date.now();
      log(line);
    }
  }

  done(final: string): void {
    if (this.timer) clearInterval(this.timer);
    if (this.tty) process.stderr.write("\r\x1b[2K");
    log(`${this.label}: ${final} in ${fmtElapsed(Date.now() - this.start)}`);
  }
}
