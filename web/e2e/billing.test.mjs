import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import {
  WIX_WEBHOOK_PUBLIC_KEY,
  launchBrowser,
  screenshot,
  signInstance,
  startFakeWix,
  startServer,
  wixWebhook,
} from './harness.mjs';

const env = {};

before(async () => {
  env.wix = await startFakeWix();
  env.server = await startServer({
    env: {
      WIX_APP_ID: env.wix.appId,
      WIX_APP_SECRET: env.wix.appSecret,
      WIX_API_BASE_URL: env.wix.baseUrl,
      WIX_PUBLIC_KEY: WIX_WEBHOOK_PUBLIC_KEY,
    },
  });
  env.browser = await launchBrowser();
});

after(async () => {
  await env.browser?.close();
  await env.server?.stop();
  env.wix?.stop();
});

/** Waits for an element's text to contain `text`; on timeout, fails with what the page shows. */
async function waitForText(page, hook, text) {
  try {
    await page.waitForFunction(
      ([selector, expected]) => document.querySelector(selector)?.textContent?.includes(expected),
      [`[data-hook="${hook}"]`, text],
      { timeout: 20_000 },
    );
  } catch (err) {
    const shown = await page.locator('main').innerText().catch(() => '(no page)');
    throw new Error(`${hook} never showed ${JSON.stringify(text)}; the page shows:\n${shown}`, { cause: err });
  }
}

async function deliver(instanceId, eventType, payload) {
  const response = await fetch(`${env.server.base}/api/webhooks/wix`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body: wixWebhook(instanceId, eventType, payload),
  });
  assert.equal(response.status, 200);
  return (await response.json()).result;
}

test('a Wix merchant sees the free plan, upgrades in Wix, and comes back to the new plan', async () => {
  const instanceId = randomUUID();
  await env.wix.command({ op: 'add', instanceId });
  const instance = signInstance({ instanceId, appId: env.wix.appId, secret: env.wix.appSecret });
  const page = await (await env.browser.newContext()).newPage();
  await page.goto(`${env.server.base}/billing?instance=${instance}&viewMode=dashboard`);
  await page.getByTestId('plan-name').waitFor();
  assert.equal(await page.getByTestId('plan-name').innerText(), 'Free');
  assert.equal(await page.getByTestId('credits-remaining').innerText(), '200');
  assert.match(await page.getByTestId('credits-used').innerText(), /0 of 200 used/);
  assert.match(await page.getByTestId('billing-tips').innerText(), /do not roll over/);
  // Every bigger plan is offered, each through the Wix pricing page of this install.
  const offers = page.getByTestId('upgrade-wix');
  assert.equal(await offers.count(), 3);
  assert.equal(
    await offers.first().getAttribute('href'),
    `https://www.wix.com/apps/upgrade/${env.wix.appId}?appInstanceId=${instanceId}`,
  );
  assert.equal(await offers.first().getAttribute('target'), '_blank');
  await page.getByTestId('history-row').first().waitFor();
  assert.equal(await page.getByTestId('history-row').count(), 1);
  assert.match(await page.getByTestId('history-row').first().innerText(), /Monthly credits[\s\S]*\+200/);
  await screenshot(page, 'billing-free');

  // The merchant buys Pro in Wix: Wix's state changes and its webhook arrives.
  await env.wix.command({ op: 'plan', instanceId, packageName: 'pro-monthly' });
  const result = await deliver(instanceId, 'PaidPlanPurchased', {
    operationTimeStamp: new Date().toISOString(),
    vendorProductId: 'pro-monthly',
    cycle: 'MONTHLY',
  });
  assert.equal(result, 'applied');
  await page.goto(`${env.server.base}/billing?upgrade=success&instance=${instance}&viewMode=dashboard`);
  await page.getByTestId('upgrade-success').waitFor();
  await waitForText(page, 'upgrade-success', 'Pro plan');
  assert.equal(await page.getByTestId('plan-name').innerText(), 'Pro');
  assert.equal(await page.getByTestId('credits-remaining').innerText(), '5,000');
  await waitForText(page, 'credits-summary', '5,000 / 5,000 credits');
  assert.equal(await page.getByTestId('manage-subscription').count(), 1);
  // Only Scale is bigger than Pro.
  assert.equal(await page.getByTestId('upgrade-wix').count(), 1);
  await screenshot(page, 'billing-pro');

  // Wix moves the site to Scale but the webhook is lost: opening the page repairs it.
  await env.wix.command({ op: 'plan', instanceId, packageName: 'scale-monthly', autoRenewing: false });
  await page.goto(`${env.server.base}/billing?instance=${instance}&viewMode=dashboard`);
  await waitForText(page, 'plan-name', 'Scale');
  assert.equal(await page.getByTestId('credits-remaining').innerText(), '25,000');
  await page.getByTestId('plan-ending').waitFor();
  assert.match(await page.getByTestId('plan-ending').innerText(), /ends/i);
  assert.equal(await page.getByTestId('upgrade-plans').count(), 0, 'nothing bigger than Scale');
  await screenshot(page, 'billing-scale-ending');
});

test('a standalone account without a payment provider is told plans are set by the operator', async () => {
  const page = await (await env.browser.newContext()).newPage();
  await page.goto(`${env.server.base}/register`);
  await page.getByLabel('Email').fill(`billing-${randomUUID()}@example.com`);
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByTestId('register-submit').click();
  await page.getByTestId('credits-summary').waitFor();
  await page.getByRole('link', { name: 'Billing' }).click();
  await page.getByTestId('plan-name').waitFor();
  assert.equal(await page.getByTestId('plan-name').innerText(), 'Free');
  assert.equal(await page.getByTestId('upgrade-unavailable').count(), 3);
  assert.equal(await page.getByTestId('sync-warning').count(), 0);
  await screenshot(page, 'billing-standalone');
});
