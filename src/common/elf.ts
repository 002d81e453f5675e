/**
 * Reading ELF files in-process, without reading the rest of them (a vmlinux is hundreds of MB) and without a
 * `readelf` per file (~25 ms each, a dozen per run): either word size and either byte order, since the
 * guest's programs and kernel are the guest architecture's, not the host's (s390x is big-endian).
 */
import { closeSync, openSync, readSync } from "node:fs";

/** An ELF file open for reading its headers and pieces; `undefined` from `open` for anything else. */
class Elf {
  private constructor(
    private readonly fd: number,
    private readonly wide: boolean,
    private readonly le: boolean,
    private readonly h: Buffer,
  ) {}

  static open(fd: number): Elf | undefined {
    const h = Elf.readAt(fd, 0, 64);
    if (h.length < 52 || h.readUInt32BE(0) !== 0x7f454c46) return undefined;
    return new Elf(fd, h[4] === 2, h[5] === 1, h);
  }

  private static readAt(fd: number, offset: number, length: number): Buffer {
    const b = Buffer.alloc(length);
    return b.subarray(0, readSync(fd, b, 0, length, offset));
  }

  at(offset: number, length: number): Buffer {
    return Elf.readAt(this.fd, offset, length);
  }

  u16(b: Buffer, o: number): number {
    return this.le ? b.readUInt16LE(o) : b.readUInt16BE(o);
  }

  u32(b: Buffer, o: number): number {
    return this.le ? b.readUInt32LE(o) : b.readUInt32BE(o);
  }

  /** An address, offset or size: 8 bytes in ELF64, 4 in ELF32. */
  word(b: Buffer, o: number): number {
    if (!this.wide) return this.u32(b, o);
    return Number(this.le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
  }

  get wordSize(): number {
    return this.wide ? 8 : 4;
  }

  sections(): { name: number; offset: number; size: number }[] {
    const h = this.h;
    const [off, entsize, num] = this.wide
      ? [this.word(h, 0x28), this.u16(h, 0x3a), this.u16(h, 0x3c)]
      : [this.u32(h, 0x20), this.u16(h, 0x2e), this.u16(h, 0x30)];
    const t = this.at(off, entsize * num);
    return Array.from({ length: num }, (_, i) => {
      const s = i * entsize;
      return this.wide
        ? { name: this.u32(t, s), offset: this.word(t, s + 0x18), size: this.word(t, s + 0x20) }
        : { name: this.u32(t, s), offset: this.u32(t, s + 0x10), size: this.u32(t, s + 0x14) };
    });
  }

  sectionNamesIndex(): number {
    return this.u16(this.h, this.wide ? 0x3e : 0x32);
  }

  segments(): { type: number; offset: number; vaddr: number; filesz: number }[] {
    const h = this.h;
    const [off, entsize, num] = this.wide
      ? [this.word(h, 0x20), this.u16(h, 0x36), this.u16(h, 0x38)]
      : [this.u32(h, 0x1c), this.u16(h, 0x2a), this.u16(h, 0x2c)];
    const t = this.at(off, entsize * num);
    return Array.from({ length: num }, (_, i) => {
      const p = i * entsize;
      return this.wide
        ? {
            type: this.u32(t, p),
            offset: this.word(t, p + 8),
            vaddr: this.word(t, p + 16),
            filesz: this.word(t, p + 32),
          }
        : {
            type: this.u32(t, p),
            offset: this.u32(t, p + 4),
            vaddr: this.u32(t, p + 8),
            filesz: this.u32(t, p + 16),
          };
    });
  }
}

function withElf<T>(path: string, none: T, f: (e: Elf) => T): T {
  const fd = openSync(path, "r");
  try {
    const e = Elf.open(fd);
    return e ? f(e) : none;
  } finally {
    closeSync(fd);
  }
}

function cstr(b: Buffer, o: number): string {
  const end = b.indexOf(0, o);
  return b.toString("latin1", o, end < 0 ? b.length : end);
}

/** One section of an ELF file by name (a kernel's `.BTF`), or undefined. */
export function elfSection(path: string, name: string): Buffer | undefined {
  return withElf(path, undefined, (e) => {
    const all = e.sections();
    const strtab = all[e.sectionNamesIndex()];
    if (!strtab) return undefined;
    const names = e.at(strtab.offset, strtab.size);
    const s = all.find((x) => cstr(names, x.name) === name);
    return s && e.at(s.offset, s.size);
  });
}

export interface ElfDeps {
  needed: string[];
  interpreter?: string;
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NEEDED = 1;
const DT_STRTAB = 5;

/**
 * What a dynamically linked program needs to start, as its loader reads it (program headers, not sections):
 * its interpreter and its DT_NEEDED libraries. None for anything that is not ELF (a script).
 */
export function elfDeps(path: string): ElfDeps {
  return withElf(path, { needed: [] }, (e) => {
    const segments = e.segments();
    const interp = segments.find((s) => s.type === PT_INTERP);
    const dynamic = segments.find((s) => s.type === PT_DYNAMIC);
    const needed: number[] = [];
    let strtab: number | undefined;
    const d = dynamic ? e.at(dynamic.offset, dynamic.filesz) : Buffer.alloc(0);
    const w = e.wordSize;
    for (let o = 0; o + 2 * w <= d.length; o += 2 * w) {
      const tag = e.word(d, o);
      if (tag === 0) break;
      if (tag === DT_NEEDED) needed.push(e.word(d, o + w));
      if (tag === DT_STRTAB) strtab = e.word(d, o + w);
    }
    // DT_STRTAB is an address: the loadable segment holding it says where that is in the file.
    const load =
      strtab === undefined
        ? undefined
        : segments.find((s) => s.type === PT_LOAD && strtab >= s.vaddr && strtab < s.vaddr + s.filesz);
    const names =
      load && strtab !== undefined
        ? needed.map((n) => cstr(e.at(strtab - load.vaddr + load.offset + n, 4096), 0))
        : [];
    return interp
      ? { needed: names, interpreter: cstr(e.at(interp.offset, interp.filesz), 0) }
      : { needed: names };
  });
}
