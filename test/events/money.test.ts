import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatMoney, MAX_PRICE_MICROS, parseMoney, sumMoney } from '../../src/events/index.ts';

describe('money', () => {
  it('parses decimal strings into integer micros', () => {
    assert.equal(parseMoney('0.35'), 350_000n);
    assert.equal(parseMoney('12'), 12_000_000n);
    assert.equal(parseMoney('1.000001'), 1_000_001n);
    assert.equal(parseMoney('0'), 0n);
    assert.equal(parseMoney('999999999999.999999'), MAX_PRICE_MICROS);
  });

  it('rejects exponents, too many fraction digits, signs, blanks and leading zeros with a reason', () => {
    for (const bad of [
      '1e3',
      '0.0000001',
      '-1',
      '+1',
      '',
      ' 1',
      '1.',
      '.5',
      '01',
      '1,5',
      'NaN',
      'Infinity',
      '1000000000000',
    ]) {
      const r = parseMoney(bad);
      assert.equal(typeof r, 'string', `expected a rejection for ${JSON.stringify(bad)}`);
    }
    assert.match(parseMoney('0.0000001') as string, /more than 6 fraction digits/);
    assert.match(parseMoney('-1') as string, />= 0/);
    assert.match(parseMoney('1e3') as string, /decimal string/);
  });

  it('formats canonically: no exponent, no trailing zeros', () => {
    assert.equal(formatMoney(350_000n), '0.35');
    assert.equal(formatMoney(12_000_000n), '12');
    assert.equal(formatMoney(1n), '0.000001');
    assert.equal(formatMoney(-1_500_000n), '-1.5');
    assert.equal(formatMoney(0n), '0');
  });

  it('round-trips: parse(format(m)) = m for every price', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: MAX_PRICE_MICROS }), (m) => {
        assert.equal(parseMoney(formatMoney(m)), m);
      }),
    );
  });

  it('round-trips: format(parse(s)) is s without trailing fraction zeros', () => {
    const decimal = fc
      .tuple(fc.bigInt({ min: 0n, max: 999_999_999_999n }), fc.option(fc.stringMatching(/^[0-9]{1,6}$/)))
      .map(([u, f]) => (f === null ? `${u}` : `${u}.${f}`));
    fc.assert(
      fc.property(decimal, (s) => {
        const m = parseMoney(s);
        assert.equal(typeof m, 'bigint');
        const canonical = s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
        assert.equal(formatMoney(m as bigint), canonical);
      }),
    );
  });

  it('sums exactly where floats would drift', () => {
    const tenCents = parseMoney('0.1') as bigint;
    assert.equal(formatMoney(sumMoney(new Array(10).fill(tenCents))), '1');
    assert.notEqual(
      new Array(10).fill(0.1).reduce((a, b) => a + b, 0),
      1,
    );
    fc.assert(
      fc.property(fc.array(fc.bigInt({ min: 0n, max: MAX_PRICE_MICROS }), { maxLength: 50 }), (xs) => {
        const total = sumMoney(xs);
        assert.equal(
          total,
          xs.reduce((a, b) => a + b, 0n),
        );
        assert.equal(parseMoney(formatMoney(total)) === total || total > MAX_PRICE_MICROS, true);
      }),
    );
  });
});
