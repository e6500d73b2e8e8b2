import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS } from '../../src/store/migrations.ts';

/**
 * SHA-256 of each migration's SQL as databases applied it (the statistics tables of migrations 2
 * and 4 were written out by hand then; they are generated now). An applied migration must keep
 * its bytes: a database records only its version, and the text is the schema it has.
 */
const APPLIED = {
  sqlite: new Map<number, string>([
    [1, 'eb0474dc033a60401b36a299efd70f03d7ee2d5831c3988e65d7d1a3a5dbb071'],
    [2, 'ff28c0f40bc116d1aa4fa38bf94a80d687f9d06264734497b836348bdccf6098'],
    [3, '00016e8a548537570b44bbaf8a391c16bbbcd708b3267a0a4be17b0d5fd45478'],
    [4, '055011c2d3ff00f6bb1e34a82069417c7364e2c40adfcb0c6be65a050b42267a'],
    [5, '533cd161300c5f765890be5973b6023b04c32be73489da9d55a61fedd1d7ea98'],
    [6, '9a3ef083d24685216aca3100d5ba751536ee81c685b40620340c2c9f13227bc7'],
    [7, '6a9f50aca4a3ba1b146f070bd470e134c0ba6922a9bd6e38b0337ccd492a7a0e'],
    [8, '0cffe9173ce671c73c66bbc84738af21b23e1c34d65614baa1c60512909e8fa3'],
  ]),
  postgres: new Map<number, string>([
    [1, '7da44b1e4e197acc82fe10b83c5e92cf57812a3ad2b997fe64dc249ec8bac7c9'],
    [2, '7c84432f3847dc99b729f4d8f0cbed753a3e9906b66ada14ea99779bc14a19ac'],
    [3, 'db99a5ac84d42aca709bee1abe9b829e95960645459f730ad0dca5fd5813373c'],
    [4, '39734a65dc102ff5d2ef4ffeb9d3968e4664529d805d3ae804e8a54b9e3754c4'],
    [5, '9f5db0a3d89111da9f56e409a569e5dc435a0a386cf6e6cd3afdb05abcada85b'],
    [6, 'c39b75424c31f9974bf2d02f3646edb931cc4af8b4ce0fb99dcc01a767884848'],
    [7, 'e8d5213af13eb505500a5e9aba00159b145ecd1e04ab44775db5328c97bb2942'],
    [8, 'f9f51257fc5591555b272fe37330a3898e05dcc1329afab5f5df7f05b4a29ed0'],
  ]),
};

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

describe('store migrations', () => {
  for (const [dialect, migrations] of [
    ['sqlite', SQLITE_MIGRATIONS],
    ['postgres', POSTGRES_MIGRATIONS],
  ] as const) {
    it(`generate the ${dialect} migrations already applied byte for byte`, () => {
      for (const [version, hash] of APPLIED[dialect]) {
        const migration = migrations.find((m) => m.version === version);
        assert.ok(migration !== undefined, `migration ${version} is missing`);
        assert.equal(sha256(migration.sql), hash, `migration ${version} (${migration.name}) changed its text`);
      }
    });
  }
});
