/** Turns a stream's chunks into whole lines (without the "\r" a serial console adds) for `onLine`. */
export function lineSplitter(onLine: (line: string) => void): (chunk: Buffer | string) => void {
  let pending = "";
  return (chunk) => {
    pending += chunk.toString();
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const l of lines) onLine(l.replace(/\r$/, ""));
  };
}
