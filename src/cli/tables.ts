import { buildPcilt } from '../tables/pcilt.js';
import { formatBytes } from '../errors.js';
import { seededRandom } from '../nn/tensor.js';
import { intFlag, listFlag, parse } from './args.js';

/** The seed's float32 tables: 256 entries of 4 bytes for every weight. */
export function seedTableBytes(O: number, C: number, K: number): number {
  return O * C * K * K * 256 * 4;
}

/** `faster-cnn tables`: what each table variant holds for one layer, against the seed's tables. */
export function tablesCommand(argv: string[]): void {
  const { values } = parse(argv, {
    in: { type: 'string' }, out: { type: 'string' }, kernel: { type: 'string' },
    bits: { type: 'string' }, 'weight-bits': { type: 'string' }, json: { type: 'boolean' },
  });
  const C = intFlag('in', values.in, 64), O = intFlag('out', values.out, 128), K = intFlag('kernel', values.kernel, 3);
  const wb = intFlag('weight-bits', values['weight-bits'], 8, 2, 8);
  const bitsList = listFlag('bits', values.bits, [1, 2, 4, 8], 1, 8);
  // Random weights of the given width: table sizes depend on the width, not on the values.
  const rng = seededRandom(12345);
  const top = 2 ** (wb - 1) - 1;
  const data = Int8Array.from({ length: O * C * K * K }, () => Math.floor(rng.uniform() * (2 * top + 1)) - top);
  const weight = { data, shape: [O, C, K, K] };
  const seed = seedTableBytes(O, C, K);
  const rows: Record<string, unknown>[] = [];
  for (const bits of bitsList) {
    for (const opts of [{ groupSize: 1 }, { groupSize: 'auto' as const }, { bitSerial: true, groupSize: 4 }, { bitSerial: true, groupSize: 8 }]) {
      try {
        const t = buildPcilt(weight, { activationBits: bits, ...opts });
        const row = { bits, ...t.info(), vsSeed: seed / t.bytes };
        // 'auto' may pick the same tables as an explicit group size.
        if (!rows.some((r) => JSON.stringify(r) === JSON.stringify(row))) rows.push(row);
      } catch (e) {
        rows.push({ bits, ...opts, error: (e as Error).message });
      }
    }
  }
  if (values.json) {
    console.log(JSON.stringify({ layer: { in: C, out: O, kernel: K, weightBits: wb }, seedFloat32Bytes: seed, rows }, null, 2));
    return;
  }
  console.log(`Layer ${C} -> ${O}, ${K}x${K}, int${wb} weights. The seed's float32 tables: ${formatBytes(seed)}.`);
  console.log('bits  variant      g  index  tables   entries  type     bytes        vs seed');
  for (const r of rows) {
    if (r.error) { console.log(`${String(r.bits).padEnd(5)} ${JSON.stringify(r)}`); continue; }
    console.log([
      String(r.bits).padEnd(5), String(r.variant).padEnd(12), String(r.groupSize).padEnd(2), String(r.indexBits).padEnd(6),
      String(r.tables).padEnd(8), String(r.entriesPerTable).padEnd(8), String(r.entryType).padEnd(8),
      formatBytes(r.bytes as number).padEnd(12), `${(r.vsSeed as number).toFixed(1)}x smaller`,
    ].join(' '));
  }
}
