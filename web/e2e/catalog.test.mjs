import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { screenshot, withServerAndBrowser } from './harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
// The project's own WooCommerce export fixture (14 products), so a fresh clone runs this too.
const CATALOG_FIXTURE = join(here, '../../crates/testkit/fixtures/woocommerce-export.csv');
const env = withServerAndBrowser({ demo: true });

test('the demo store can be browsed, searched and opened', async () => {
  const page = await (await env.browser.newContext()).newPage();
  await page.goto(env.server.demoLink);
  await page.getByTestId('credits-summary').waitFor();
  await page.getByRole('link', { name: 'Products' }).click();
  await page.getByTestId('product-row').first().waitFor();
  assert.match(await page.getByTestId('products-count').innerText(), /Showing 25 of 49 products/);
  await screenshot(page, 'products');

  await page.getByTestId('load-more').click();
  await page.getByText('Showing 49 of 49 products').waitFor();

  await page.getByLabel('Search', { exact: true }).fill('ridgeline');
  await page.getByText('Showing 1 of 1 products').waitFor();
  await page.getByTestId('product-row').first().click();
  await page.getByTestId('product-title').waitFor();
  assert.match(await page.getByTestId('product-title').innerText(), /Ridgeline Organic Cotton Tee/);
  assert.equal(await page.getByTestId('variants-table').locator('tbody tr').count(), 3);
  assert.match(await page.getByTestId('product-description').innerText(), /organic cotton/i);
  await screenshot(page, 'product-detail');

  await page.goto(`${env.server.base}/products?q=${encodeURIComponent('ספל')}`);
  await page.getByText('Showing 1 of 1 products').waitFor();
  await screenshot(page, 'products-search-hebrew');
});

test('a local catalog is created and filled from a CSV with a per-line report', async () => {
  const page = await (await env.browser.newContext()).newPage();
  await page.goto(env.server.demoLink.replace(/#.*/, ''));
  // The demo link was used by the previous test: sign in through a fresh session instead.
  await page.goto(`${env.server.base}/register`);
  await page.getByLabel('Email').fill('catalog@example.com');
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByTestId('register-submit').click();
  await page.getByTestId('credits-summary').waitFor();

  await page.getByRole('link', { name: 'Stores' }).click();
  await page.getByLabel('Catalog name').fill('Trailhead');
  await page.getByTestId('create-store').click();
  await page.getByTestId('store-card').first().waitFor();
  await page.getByTestId('import-file').first().setInputFiles(CATALOG_FIXTURE);
  await page.getByTestId('import-report').waitFor();
  assert.match(await page.getByTestId('import-report').innerText(), /Imported 14 products from a WooCommerce CSV: 14 new/);
  await page.getByText('14 products · USD').waitFor();
  await screenshot(page, 'stores-import-report');

  await page.getByTestId('import-file').first().setInputFiles({
    name: 'messy.csv',
    mimeType: 'text/csv',
    buffer: Buffer.from('ID,Type,SKU,Name,Regular price\n900,simple,M-1,Fine,5\n901,simple,M-2,Broken,five\n'),
  });
  await page.getByTestId('rejected-rows').waitFor();
  assert.match(await page.getByTestId('rejected-rows').innerText(), /3\s+Regular price/);
  await screenshot(page, 'stores-rejected-rows');

  await page.getByRole('link', { name: 'Browse products' }).first().click();
  await page.getByText('Showing 15 of 15 products').waitFor();
});
