import { closeSync, openSync, readSync } from "node:fs";

function readAt(fd: number, offset: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  readSync(fd, b, 0, length, offset);
  return b;
}

/**
 * One section of a little-endian ELF64 file (every kernel khil builds), read without reading the rest: a
 * vmlinux is hundreds of MB, its `.BTF` a few.
 */
export function elfSection(path: string, name: string): Buffer | undefined {
  const fd = openSync(path, "r");
  try {
    const h = readAt(fd, 0, 64);
    if (h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h[5] !== 1) return undefined;
    const shoff = Number(h.readBigUInt64LE(0x28));
    const shentsize = h.readUInt16LE(0x3a);
    const shnum = h.readUInt16LE(0x3c);
    const headers = readAt(fd, shoff, shentsize * shnum);
    const at = (i: number) => ({
      name: headers.readUInt32LE(i * shentsize),
      offset: Number(headers.readBigUInt64LE(i * shentsize + 0x18)),
      size: Number(headers.readBigUInt64LE(i * shentsize + 0x20)),
    });
    const strtab = at(h.readUInt16LE(0x3e));
    const names = readAt(fd, strtab.offset, strtab.size);
    for (let i = 0; i < shnum; i++) {
      const s = at(i);
      if (names.toString("latin1", s.name, names.indexOf(0, s.name)) === name)
        return readAt(fd, s.offset, s.size);
    }
    return undefined;
  } finally {
    closeSync(fd);
  }
}
