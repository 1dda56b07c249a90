import { FasterCnnError, formatBytes } from '../../errors.js';

const PAGE = 65536;
const ALIGN = 64;

/**
 * A first-fit allocator over a (shared) WebAssembly.Memory, run from JS: the kernels own no
 * memory and take byte offsets. Freed blocks are merged with their free neighbours.
 */
export class Heap {
  /** Free blocks [start, end), sorted by start. */
  private free: [number, number][] = [];
  private sizes = new Map<number, number>();
  private top: number;

  constructor(readonly memory: WebAssembly.Memory, base: number, readonly maxBytes: number) {
    this.top = align(base);
  }

  /** Every block has at least 16 bytes of slack past `bytes`: a kernel's vector load may read up to 15 bytes past its end. */
  alloc(bytes: number): number {
    const size = align(Math.max(bytes, 0) + 16);
    for (let i = 0; i < this.free.length; i++) {
      const [start, end] = this.free[i];
      if (end - start < size) continue;
      if (end - start === size) this.free.splice(i, 1);
      else this.free[i] = [start + size, end];
      this.sizes.set(start, size);
      return start;
    }
    const start = this.top;
    const need = start + size;
    if (need > this.maxBytes) {
      throw new FasterCnnError(`the wasm heap would need ${formatBytes(need)}, over its maximum of ${formatBytes(this.maxBytes)}`);
    }
    const have = this.memory.buffer.byteLength;
    if (need > have) this.memory.grow(Math.ceil((need - have) / PAGE));
    this.top = need;
    this.sizes.set(start, size);
    return start;
  }

  release(ptr: number): void {
    const size = this.sizes.get(ptr);
    if (size === undefined) return;
    this.sizes.delete(ptr);
    let i = 0;
    while (i < this.free.length && this.free[i][0] < ptr) i++;
    this.free.splice(i, 0, [ptr, ptr + size]);
    // Merge with the next block, then with the previous one.
    if (i + 1 < this.free.length && this.free[i][1] === this.free[i + 1][0]) {
      this.free[i][1] = this.free[i + 1][1];
      this.free.splice(i + 1, 1);
    }
    if (i > 0 && this.free[i - 1][1] === this.free[i][0]) {
      this.free[i - 1][1] = this.free[i][1];
      this.free.splice(i, 1);
    }
  }

  /** Bytes currently handed out. */
  get used(): number {
    let n = 0;
    for (const s of this.sizes.values()) n += s;
    return n;
  }

  bytes(): Uint8Array {
    return new Uint8Array(this.memory.buffer);
  }
}

function align(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}
