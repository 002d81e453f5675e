/**
 * Turns a stream's chunks into whole lines (without the "\r" a serial console adds) for `onLine`; `flush`
 * hands on a last line the stream ended without a newline.
 */
export function lineSplitter(
  onLine: (line: string) => void,
): ((chunk: Buffer | string) => void) & { flush: () => void } {
  let pending = "";
  const take = (l: string) => onLine(l.replace(/\r$/, ""));
  const split = (chunk: Buffer | string) => {
    pending += chunk.toString();
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const l of lines) take(l);
  };
  const flush = () => {
    if (pending) take(pending);
    pending = "";
  };
  return Object.assign(split, { flush });
}
