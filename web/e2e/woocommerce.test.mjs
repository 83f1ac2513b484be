import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { screenshot, startFakeWooCommerce, withServerAndBrowser } from './harness.mjs';

const env = withServerAndBrowser({ env: { OPTIMIZER_WOOCOMMERCE_ALLOW_HTTP: 'true' } });
let woo;
before(async () => {
  woo = await startFakeWooCommerce();
});
after(() => woo?.stop());

test('a WooCommerce store is connected with its API keys, read, and synced again', async () => {
  const page = await (await env.browser.newContext()).newPage();
  await page.goto(`${env.server.base}/register`);
  await page.getByLabel('Email').fill('woo@example.com');
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByTestId('register-submit').click();
  await page.getByTestId('credits-summary').waitFor();
  await page.getByRole('link', { name: 'Stores' }).click();

  await page.getByLabel('Store address').fill(woo.baseUrl);
  await page.getByLabel('Consumer key').fill(woo.consumerKey);
  await page.getByLabel('Consumer secret').fill('cs_not_the_secret');
  await page.getByTestId('connect-woocommerce').click();
  await page.getByTestId('connect-error').waitFor();
  // The store is plain HTTP, where the keys travel as an OAuth 1.0a signature.
  assert.match(
    await page.getByTestId('connect-error').innerText(),
    /Invalid signature - provided signature does not match\. \(woocommerce_rest_authentication_error\)/,
  );
  await screenshot(page, 'woocommerce-wrong-secret');

  await page.getByLabel('Consumer secret').fill(woo.consumerSecret);
  await page.getByTestId('connect-woocommerce').click();
  await page.getByText('3 products · USD').waitFor();
  await page.getByTestId('sync-history').waitFor();
  assert.match(await page.getByTestId('sync-history').innerText(), /On connect\s+3 read: 3 new/);

  await page.getByTestId('sync-status').getByText(/Up to date as of/).waitFor();
  await page.getByTestId('auto-sync').click();
  await page.waitForFunction(() => document.querySelector('[data-hook="auto-sync"] input')?.checked === true);
  await page.getByTestId('sync-button').click();
  await page.getByText('Sync now').nth(1).waitFor();
  await page.waitForFunction(() => document.querySelectorAll('[data-hook="sync-history"] tbody tr').length === 2);
  assert.match(await page.getByTestId('sync-history').innerText(), /Sync now\s+3 read: 0 new, 0 updated, 0 removed/);
  await screenshot(page, 'woocommerce-connected');

  await page.reload();
  await page.waitForFunction(() => document.querySelector('[data-hook="auto-sync"] input')?.checked === true);

  await page.getByRole('link', { name: 'Browse products' }).click();
  await page.getByText('Showing 3 of 3 products').waitFor();
  assert.match(await page.getByTestId('products-table').innerText(), /Pruning Shears/);
});

test('a WooCommerce store is connected by approving access on the store', async () => {
  const store = await startFakeWooCommerce();
  try {
    const page = await (await env.browser.newContext()).newPage();
    await page.goto(`${env.server.base}/register`);
    await page.getByLabel('Email').fill('woo-approve@example.com');
    await page.getByLabel('Password').fill('correct horse battery');
    await page.getByTestId('register-submit').click();
    await page.getByTestId('credits-summary').waitFor();
    await page.getByRole('link', { name: 'Stores' }).click();

    await page.getByLabel('Store address').fill(store.baseUrl);
    // The store's grant screen approves, posts the keys to the service and sends the
    // merchant back to the Stores page.
    await page.getByTestId('authorize-woocommerce').click();
    await page.waitForURL(/\/stores\?woocommerce=returned.*success=1/);
    await page.getByTestId('woocommerce-approved').waitFor();
    await page.getByText('3 products · USD').waitFor();
    await page.getByTestId('sync-history').waitFor();
    assert.match(await page.getByTestId('sync-history').innerText(), /On connect\s+3 read: 3 new/);
    await screenshot(page, 'woocommerce-approved');
  } finally {
    store.stop();
  }
});
