import assert from 'node:assert/strict';
import { test } from 'node:test';
import { screenshot, signInstance, withServerAndBrowser } from './harness.mjs';

const env = withServerAndBrowser({ demo: true });
let page;

const RIDGELINE = 'Ridgeline Organic Cotton Tee';
const HOODIE = 'hoodie hoodie fleece pullover';

/** Calls the API with the page's session, as a second tab of the same merchant would. */
function apiFromPage(method, path, body) {
  return page.evaluate(
    async ({ method, path, body }) => {
      const response = await fetch(path, {
        method,
        headers: {
          authorization: `Bearer ${sessionStorage.getItem('uo.accessToken')}`,
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: response.status, body: await response.json() };
    },
    { method, path, body },
  );
}

async function productTitle(productId) {
  await page.goto(`${env.server.base}/products/${productId}`);
  await page.getByTestId('product-title').waitFor();
  return (await page.getByTestId('product-title').innerText()).trim();
}

test('two products are optimized, followed live in the queue, reviewed, published and reverted', async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  await page.goto(env.server.demoLink);
  await page.getByTestId('credits-summary').waitFor();
  assert.match(await page.getByTestId('credits-summary').innerText(), /200 \/ 200 credits/);

  await page.getByRole('link', { name: 'Optimizer' }).click();
  await page.getByTestId('picker-row').first().waitFor();
  assert.match(await page.getByTestId('picker-count').innerText(), /Showing 25 of 49 products/);
  assert.match(await page.getByTestId('job-cost').innerText(), /^0 credits$/);
  assert.match(await page.getByTestId('optimize-blocker').innerText(), /Select at least one product/);
  assert.equal(await page.getByTestId('optimize').isDisabled(), true);
  // Translation is not offered by the offline provider, and says why.
  assert.match(await page.getByTestId('translation-unavailable').innerText(), /Translation needs an AI provider/);

  await page.getByLabel('Search products').fill('hoodie hoodie');
  await page.getByText('Showing 1 of 1 products').waitFor();
  await page.getByTestId('picker-row').filter({ hasText: HOODIE }).click();
  await page.getByLabel('Search products').fill('');
  await page.getByText('Showing 25 of 49 products').waitFor();
  await page.getByTestId('picker-row').filter({ hasText: RIDGELINE }).click();
  assert.match(await page.getByTestId('selection-count').innerText(), /2 products selected/);
  assert.match(await page.getByTestId('optimize-blocker').innerText(), /Choose at least one field/);

  await page.getByTestId('attribute-title').click();
  await page.getByTestId('attribute-description').click();
  assert.match(await page.getByTestId('job-cost').innerText(), /^4 credits$/);
  assert.match(await page.getByTestId('cost-breakdown').innerText(), /2 products × 2 fields/);
  assert.equal((await page.getByTestId('credits-remaining').innerText()).trim(), '200');
  assert.equal((await page.getByTestId('credits-after').innerText()).trim(), '196');
  assert.equal(await page.getByTestId('upgrade-cta').count(), 0);
  await page.getByLabel('Brand voice').fill('Warm and outdoorsy');
  await screenshot(page, 'optimizer');

  await page.getByTestId('optimize').click();
  await page.waitForURL('**/queue');
  // The header follows the credits the job reserved.
  await page.getByText('196 / 200 credits').waitFor();
  await page.getByTestId('finished-job').first().waitFor();
  const jobId = await page.getByTestId('finished-job').first().getAttribute('data-job-id');
  const finished = page.locator(`[data-hook="finished-job"][data-job-id="${jobId}"]`);
  assert.match(await finished.getByTestId('finished-status').innerText(), /done/i);
  assert.match(await finished.innerText(), /2 products × 2 fields · 4 of 4 items done/);
  await page.getByText('Live updates').waitFor();

  // While the queue is open, a job started elsewhere (another tab) arrives by the event stream.
  const products = await apiFromPage('GET', '/api/products?q=ridgeline&limit=1');
  const other = await apiFromPage('POST', '/api/jobs', {
    sourceScope: 'products',
    sourceIds: [products.body.items[0].id],
    attributes: ['seo_title'],
    targetLang: null,
  });
  assert.equal(other.status, 201);
  await page.locator(`[data-hook="finished-job"][data-job-id="${other.body.id}"]`).waitFor();
  assert.equal(await page.getByTestId('finished-job').count(), 2);
  await page.getByText('195 / 200 credits').waitFor();
  await screenshot(page, 'queue');

  // Completed: the history, filtered, and the review panel of the first job.
  await finished.getByTestId('view-results').click();
  await page.waitForURL(`**/jobs?job=${jobId}`);
  const review = page.getByTestId('job-review');
  await review.getByTestId('review-item').first().waitFor();
  assert.equal(await review.getByTestId('review-item').count(), 4);
  assert.match(await review.getByTestId('review-summary').innerText(), /4 of 4 items done · 4 credits charged/);

  const hoodie = review.getByTestId('review-product').filter({ hasText: HOODIE });
  const hoodieTitle = hoodie.locator('[data-hook="review-item"][data-attribute="title"]');
  const hoodieDescription = hoodie.locator('[data-hook="review-item"][data-attribute="description"]');
  assert.equal((await hoodieTitle.getByTestId('diff-removed').allInnerTexts()).join(' '), HOODIE);
  assert.equal((await hoodieTitle.getByTestId('diff-added').allInnerTexts()).join(' '), 'Hoodie Fleece Pullover');
  assert.ok((await hoodieDescription.getByTestId('diff-added').count()) > 0, 'the description shows added words');
  assert.match(await hoodieDescription.getByTestId('text-diff').innerText(), /Brand: Northwind Trail Co\./);
  // The optimizer kept the Ridgeline title as it was, and says so.
  const ridgeline = review.getByTestId('review-product').filter({ hasText: RIDGELINE });
  await ridgeline.locator('[data-attribute="title"]').getByTestId('item-unchanged').waitFor();
  await screenshot(page, 'job-review');

  await review.getByTestId('render-html').click();
  await hoodieDescription.getByTestId('rendered-html').nth(1).waitFor();
  assert.equal(await hoodieDescription.locator('[data-hook="rendered-html"] li').count(), 2);
  await screenshot(page, 'job-review-html');
  await review.getByTestId('render-html').click();

  // Publish both items of the hoodie.
  await hoodieTitle.getByTestId('item-checkbox').click();
  await hoodieDescription.getByTestId('item-checkbox').click();
  assert.match(await review.getByTestId('select-all-items').innerText(), /2 items selected/);
  await review.getByTestId('publish-selected').click();
  await review.getByTestId('review-notice').waitFor();
  assert.match(await review.getByTestId('review-notice').innerText(), /Published 2 items\./);
  assert.match(await hoodieTitle.getByTestId('item-published').innerText(), /published/i);
  assert.match(await hoodieTitle.getByTestId('item-outcome').innerText(), /Published: the store now shows the new text/);
  assert.equal(await hoodieTitle.getByTestId('publish-item').isDisabled(), true);
  await screenshot(page, 'job-review-published');

  const productLink = await hoodie.getByRole('link', { name: 'Open product' }).getAttribute('href');
  const productId = productLink.split('/').pop();
  const jobUrl = page.url();
  assert.equal(await productTitle(productId), 'Hoodie Fleece Pullover');

  // Revert the title: the original is back in the store.
  await page.goto(jobUrl);
  await hoodieTitle.getByTestId('revert-item').waitFor();
  await hoodieTitle.getByTestId('revert-item').click();
  await hoodieTitle.getByText('Reverted: the store shows the original text again.').waitFor();
  assert.match(await hoodieTitle.getByTestId('item-published').innerText(), /reverted/i);
  assert.equal(await hoodieTitle.getByTestId('publish-item').isDisabled(), false);
  assert.equal(await productTitle(productId), HOODIE);

  // Someone edits the product in the store: publishing the title again is a conflict that
  // shows the store's value and can be overwritten on purpose.
  const store = (await apiFromPage('GET', '/api/stores')).body.stores[0];
  const imported = await page.evaluate(
    async ({ storeId, csv }) =>
      (
        await fetch(`/api/stores/${storeId}/import`, {
          method: 'POST',
          headers: { authorization: `Bearer ${sessionStorage.getItem('uo.accessToken')}`, 'content-type': 'text/csv' },
          body: csv,
        })
      ).json(),
    {
      storeId: store.id,
      csv: 'ID,Type,SKU,Name,Description\n1005,variable,NW-HOOD-002,Hoodie renamed in the store,warm fleece hoodie. has pocket. good for camping\n',
    },
  );
  assert.equal(imported.updated, 1);
  await page.goto(jobUrl);
  await hoodieTitle.getByTestId('publish-item').click();
  const conflict = hoodieTitle.getByTestId('item-conflict');
  await conflict.waitFor();
  assert.match(await conflict.innerText(), /Someone edited this field in the store after the optimizer read it/);
  assert.equal((await conflict.getByTestId('current-value').innerText()).trim(), 'Hoodie renamed in the store');
  await screenshot(page, 'job-review-conflict');
  await conflict.getByTestId('overwrite-anyway').click();
  await hoodieTitle.getByText('Published: the store now shows the new text.').waitFor();
  assert.equal(await hoodieTitle.getByTestId('item-conflict').count(), 0);
  assert.equal(await productTitle(productId), 'Hoodie Fleece Pullover');

  // The history filter: both jobs are done, none failed.
  await page.goto(`${env.server.base}/jobs`);
  await page.getByTestId('job-row').first().waitFor();
  assert.equal(await page.getByTestId('job-row').count(), 2);
  await page.getByTestId('status-filter').getByText('Failed').click();
  await page.getByTestId('jobs-empty').waitFor();
  assert.match(await page.getByTestId('jobs-empty').innerText(), /No failed jobs/);
  await page.getByTestId('status-filter').getByText('Done').click();
  await page.getByTestId('job-row').first().waitFor();
  assert.equal(await page.getByTestId('job-row').count(), 2);
  await screenshot(page, 'completed-jobs');
});

test('a job costing more than the remaining credits shows the upgrade call to action, and the server refusal is explained', async () => {
  await page.goto(`${env.server.base}/optimizer`);
  await page.getByTestId('picker-row').first().waitFor();
  assert.equal((await page.getByTestId('credits-remaining').innerText()).trim(), '195');
  for (const attribute of ['title', 'description', 'seo_title', 'seo_description', 'info_sections']) {
    await page.getByTestId(`attribute-${attribute}`).click();
  }
  await page.getByTestId('picker-load-more').click();
  await page.getByText('Showing 49 of 49 products').waitFor();
  await page.getByTestId('select-all-shown').click();
  assert.match(await page.getByTestId('selection-count').innerText(), /49 products selected/);
  assert.match(await page.getByTestId('job-cost').innerText(), /^245 credits$/);
  assert.match(await page.getByTestId('credits-after').innerText(), /50 short/);
  const cta = page.getByTestId('upgrade-cta');
  await cta.waitFor();
  assert.match(await cta.innerText(), /This job needs 245 credits, but your account has 195 credits left this month/);
  assert.equal(await cta.getByRole('link', { name: 'Upgrade plan' }).getAttribute('href'), '/account');
  assert.equal(await page.getByTestId('optimize').isDisabled(), true);
  assert.match(await page.getByTestId('optimize-blocker').innerText(), /Not enough credits for this job/);
  await screenshot(page, 'optimizer-upgrade');

  // 25 products × 5 fields = 125 credits fit the 195 left…
  await page.reload();
  await page.getByTestId('picker-row').first().waitFor();
  for (const attribute of ['title', 'description', 'seo_title', 'seo_description', 'info_sections']) {
    await page.getByTestId(`attribute-${attribute}`).click();
  }
  await page.getByTestId('select-all-shown').click();
  assert.match(await page.getByTestId('selection-count').innerText(), /25 products selected/);
  assert.match(await page.getByTestId('job-cost').innerText(), /^125 credits$/);
  assert.equal(await page.getByTestId('optimize').isDisabled(), false);

  // …until another tab spends 100 of them.
  const ids = (await apiFromPage('GET', '/api/products?limit=25')).body.items.map((p) => p.id);
  const spent = await apiFromPage('POST', '/api/jobs', {
    sourceScope: 'products',
    sourceIds: ids,
    attributes: ['title', 'description', 'seo_title', 'seo_description'],
    targetLang: null,
  });
  assert.equal(spent.status, 201);
  assert.equal(spent.body.credits.reserved, 100);

  await page.getByTestId('optimize').click();
  const refusal = page.getByTestId('submit-error');
  await refusal.waitFor();
  assert.match(await refusal.innerText(), /The job was not created: it needs 125 credits, but your account has 95 credits left this month/);
  // The page now knows the real balance: the calculator turns into the call to action.
  await page.getByText('95 / 200 credits').waitFor();
  await cta.waitFor();
  assert.match(await cta.innerText(), /This job needs 125 credits, but your account has 95 credits left/);
  assert.equal(await page.getByTestId('optimize').isDisabled(), true);
  assert.equal(new URL(page.url()).pathname, '/optimizer');
  await screenshot(page, 'optimizer-refused');
});

test('embedded in Wix, the queue follows jobs live with the instance as the stream credential', async () => {
  const embedded = await (await env.browser.newContext()).newPage();
  const instance = signInstance();
  await embedded.goto(`${env.server.base}/queue?instance=${instance}&viewMode=dashboard`);
  await embedded.getByTestId('queue-empty').waitFor();
  // "Live" means the EventSource opened; without a credential it would be refused (401)
  // and the page would poll instead.
  await embedded.getByText('Live updates').waitFor();
  const refused = await embedded.evaluate(() => fetch('/api/jobs/events').then((response) => response.status));
  assert.equal(refused, 401);
  await screenshot(embedded, 'queue-embedded');
});
