// The fake WooCommerce store driven by WooCommerce's own JavaScript client. The store is
// served over http://, so the client signs every request with OAuth 1.0a (HMAC-SHA256, the
// parameters in the query string), which WooCommerce verifies in
// WC_REST_Authentication::perform_oauth_authentication.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WooCommerceRestApiModule from '@woocommerce/woocommerce-rest-api';
import { startFake } from '../fakes.mjs';

const WooCommerceRestApi = WooCommerceRestApiModule.default ?? WooCommerceRestApiModule;

let fake;
let api;

before(async () => {
  fake = await startFake('fake-woocommerce');
  api = new WooCommerceRestApi({
    url: fake.baseUrl,
    consumerKey: fake.consumerKey,
    consumerSecret: fake.consumerSecret,
    version: 'wc/v3',
  });
});

after(() => fake?.stop());

/** `{rel: URL}` from a `Link` header. */
function links(header) {
  return Object.fromEntries(
    (header ?? '').split(', ').filter(Boolean).map((part) => {
      const [target, rel] = part.split('; ');
      return [rel.replace(/^rel="|"$/g, ''), new URL(target.replace(/^<|>$/g, ''))];
    }),
  );
}

test('lists products page by page over plain HTTP with OAuth 1.0a', async () => {
  const first = await api.get('products', { per_page: 2, orderby: 'id', order: 'asc' });
  assert.equal(first.status, 200);
  assert.equal(first.headers['x-wp-total'], '3');
  assert.equal(first.headers['x-wp-totalpages'], '2');
  assert.deepEqual(first.data.map((product) => product.id), [301, 302]);
  const next = links(first.headers.link).next;
  assert.ok(next, `a next link in ${first.headers.link}`);
  assert.equal(next.origin, new URL(fake.baseUrl).origin, 'the Link header is absolute');
  assert.equal(next.pathname, '/wp-json/wc/v3/products');
  assert.equal(next.searchParams.get('per_page'), '2', 'the Link header keeps the query');
  assert.equal(next.searchParams.get('orderby'), 'id');
  const second = await api.get('products', {
    per_page: 2,
    orderby: 'id',
    order: 'asc',
    page: Number(next.searchParams.get('page')),
  });
  assert.deepEqual(second.data.map((product) => product.id), [303]);
  assert.equal(links(second.headers.link).prev.searchParams.get('page'), '1');
});

test('gets and updates a product', async () => {
  const { data: product } = await api.get('products/302');
  assert.equal(product.name, 'Pruning Shears');
  assert.equal(product.regular_price, '29');
  const updated = await api.put('products/302', {
    name: 'Pruning Shears, bypass',
    meta_data: [{ key: '_yoast_wpseo_title', value: 'Bypass shears' }],
  });
  assert.equal(updated.status, 200);
  assert.equal(updated.data.name, 'Pruning Shears, bypass');
  const { data: again } = await api.get('products/302');
  assert.equal(again.name, 'Pruning Shears, bypass');
  assert.ok(again.meta_data.some((meta) => meta.key === '_yoast_wpseo_title' && meta.value === 'Bypass shears'));
});

test('refuses a wrong secret with WooCommerce error', async () => {
  const wrong = new WooCommerceRestApi({
    url: fake.baseUrl,
    consumerKey: fake.consumerKey,
    consumerSecret: 'cs_wrong',
    version: 'wc/v3',
  });
  await assert.rejects(wrong.get('products'), (error) => {
    assert.equal(error.response.status, 401);
    assert.equal(error.response.data.code, 'woocommerce_rest_authentication_error');
    assert.equal(error.response.data.message, 'Invalid signature - provided signature does not match.');
    return true;
  });
});
