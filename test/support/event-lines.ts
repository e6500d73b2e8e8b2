/**
 * Generated event lines for differential tests of the ingest codec: emissions and clicks with
 * shuffled keys, random whitespace, edge-case ids, timestamps, costs and IPs, and lines mutated
 * by one edit (most of them invalid).
 */
import fc from 'fast-check';

const ident = fc.oneof(
  { weight: 6, arbitrary: fc.stringMatching(/^[a-z0-9-]{1,12}$/) },
  { weight: 1, arbitrary: fc.string({ minLength: 0, maxLength: 4 }) },
  { weight: 1, arbitrary: fc.constantFrom('a'.repeat(256), 'b'.repeat(257), 'é', 'a"b', 'tab\there', '') },
);
const two = (n: number) => String(n).padStart(2, '0');
const ts = fc.oneof(
  fc.integer({ min: 0, max: 253_402_300_799_999 }).map((ms) => new Date(ms).toISOString()),
  // With a zone offset, in and out of range (hours to 25, minutes to 61; near both ends of time).
  fc
    .tuple(
      fc.oneof(
        fc.integer({ min: 0, max: 253_402_300_799_999 }),
        fc.integer({ min: 0, max: 86_400_000 }),
        fc.integer({ min: 253_402_214_400_000, max: 253_402_300_799_999 }),
      ),
      fc.constantFrom('+', '-'),
      fc.integer({ min: 0, max: 25 }),
      fc.integer({ min: 0, max: 61 }),
    )
    .map(([ms, sign, h, m]) => `${new Date(ms).toISOString().slice(0, 23)}${sign}${two(h)}:${two(m)}`),
  fc.integer({ min: 0, max: 4_102_444_800_000 }),
  fc.constantFrom(
    '2026-11-21T10:00:00Z',
    '2026-11-21T11:00:00.5+01:00',
    '2026-02-30T00:00:00.000Z',
    '2026-11-21 10:00:00Z',
    -5,
    1.5,
    1e3,
    '1732180800000',
  ),
);
const cost = fc.oneof(
  fc.stringMatching(/^(0|[1-9][0-9]{0,8})(\.[0-9]{1,6})?$/),
  fc.constantFrom('0.1234567', '-1', '1e3', '999999999999.999999', '1000000000', '01', '.5', '5.', 1.5),
);
const offer = fc.record({ offerId: ident, clickCost: cost }, { requiredKeys: ['offerId', 'clickCost'] });
const emission = fc.record(
  {
    type: fc.constant('emission'),
    id: ident,
    ts,
    placement: ident,
    dc: ident,
    offers: fc.array(offer, { minLength: 0, maxLength: 6 }),
  },
  { requiredKeys: ['type', 'id', 'ts', 'placement', 'offers'] },
);
const click = fc.record(
  {
    type: fc.constantFrom('click', 'clic'),
    id: ident,
    ts,
    emissionId: ident,
    offerId: ident,
    userId: ident,
    ip: fc.oneof(fc.ipV4(), fc.ipV6(), fc.constantFrom('1.2.3', 'nope', '::1')),
    dc: ident,
  },
  { requiredKeys: ['type', 'id', 'ts', 'emissionId', 'offerId', 'userId', 'ip'] },
);
/** An event serialised with shuffled keys and random whitespace. */
export const line = fc
  .tuple(fc.oneof(emission, click), fc.integer(), fc.constantFrom('', ' ', '\t', '  '))
  .map(([event, seed, pad]) => {
    const entries: [string, unknown][] = Object.entries(event);
    for (let i = entries.length - 1; i > 0; i--) {
      const j = Math.abs(seed + i * 31) % (i + 1);
      [entries[i], entries[j]] = [entries[j]!, entries[i]!];
    }
    // Offers as producers write them: mostly compact in schema order, sometimes reordered or spaced.
    const offer = (o: unknown, i: number) => {
      if (o === null || typeof o !== 'object' || Array.isArray(o) || (seed + i) % 3 !== 0) return JSON.stringify(o);
      const keys = Object.entries(o as Record<string, unknown>).reverse();
      return `{${keys.map(([k, v]) => `${pad}${JSON.stringify(k)}${pad}:${pad}${JSON.stringify(v)}`).join(',')}}`;
    };
    const value = (k: string, v: unknown) =>
      k === 'offers' && Array.isArray(v) ? `[${v.map(offer).join(`,${pad}`)}]` : JSON.stringify(v);
    return `${pad}{${entries.map(([k, v]) => `${pad}${JSON.stringify(k)}${pad}:${pad}${value(k, v)}`).join(',')}}${pad}`;
  });
export const mutated = fc.tuple(line, fc.nat(), fc.string({ maxLength: 2 })).map(([l, at, ins]) => {
  const i = at % (l.length + 1);
  return l.slice(0, i) + ins + l.slice(i + 1);
});
