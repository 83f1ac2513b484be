// The fake Wix APIs driven by Wix's own SDK (@wix/sdk with @wix/stores), as an app calls
// them: AppStrategy mints an instance token, then productsV3.queryProducts() sends the
// Catalog V3 query in its GET form (`?.r=<base64url JSON>`).
//
// The SDK builds every URL as `https://<apiBaseUrl>/…` and AppStrategy posts to the fixed
// https://www.wixapis.com/oauth2/token with the global fetch, so the base URL is overridden
// at the one seam the SDK offers for both: fetch (createClient's `fetch` option and the
// global one), which sends https://www.wixapis.com to the fake.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { AppStrategy, createClient } from '@wix/sdk';
import { productsV3 } from '@wix/stores';
import { startFake } from '../fakes.mjs';

const INSTANCE = 'c0ffee00-0000-4000-8000-000000000001';
const WIX = 'https://www.wixapis.com';

let fake;
let client;
let seededIds;
const requests = [];
const nativeFetch = globalThis.fetch;

before(async () => {
  fake = await startFake('fake-wix');
  assert.equal((await fake.command({ op: 'add', instanceId: INSTANCE })).ok, true);
  const seeded = await fake.command({
    op: 'seed',
    instanceId: INSTANCE,
    titles: ['Garden Trowel', 'Pruning Shears', 'Watering Can'],
  });
  assert.equal(seeded.ok, true);
  seededIds = seeded.ids;
  const toFake = (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    assert.ok(url.startsWith(WIX), `the SDK calls ${url}`);
    const rewritten = fake.baseUrl + url.slice(WIX.length);
    requests.push({ method: init?.method ?? 'GET', url: rewritten });
    return nativeFetch(rewritten, init);
  };
  globalThis.fetch = toFake;
  client = createClient({
    modules: { productsV3 },
    auth: AppStrategy({ appId: fake.appId, appSecret: fake.appSecret, instanceId: INSTANCE }),
    fetch: toFake,
  });
});

after(() => {
  globalThis.fetch = nativeFetch;
  fake?.stop();
});

test('queries products through the SDK, page by page', async () => {
  const first = await client.productsV3.queryProducts().limit(2).find();
  assert.equal(first.items.length, 2);
  assert.ok(first.hasNext());
  const second = await first.next();
  assert.equal(second.items.length, 1);
  const names = [...first.items, ...second.items].map((product) => product.name).sort();
  assert.deepEqual(names, ['Garden Trowel', 'Pruning Shears', 'Watering Can']);
  const queries = requests.filter(({ url }) => new URL(url).pathname === '/stores/v3/products/query');
  assert.ok(queries.length >= 2);
  for (const { method, url } of queries) {
    assert.equal(method, 'GET', 'the SDK queries with GET');
    assert.ok(new URL(url).searchParams.has('.r'), url);
  }
});

test('filters travel in the GET form too', async () => {
  const result = await client.productsV3.queryProducts().in('_id', [seededIds[2]]).find();
  assert.deepEqual(result.items.map((product) => product.name), ['Watering Can']);
  const one = await client.productsV3.getProduct(seededIds[0]);
  assert.equal(one.name, 'Garden Trowel');
});
