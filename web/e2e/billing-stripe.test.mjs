import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { launchBrowser, screenshot, startFakeStripe, startServer } from './harness.mjs';

const WEBHOOK_SECRET = 'whsec_e2e_endpoint_secret';
const env = {};

before(async () => {
  env.stripe = await startFakeStripe();
  env.server = await startServer({
    env: {
      STRIPE_SECRET_KEY: env.stripe.secretKey,
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      STRIPE_PRICES: 'starter=price_starter,pro=price_pro,scale=price_scale',
      STRIPE_API_BASE_URL: env.stripe.baseUrl,
    },
  });
  await env.stripe.command({ op: 'endpoint', url: `${env.server.base}/api/webhooks/stripe`, secret: WEBHOOK_SECRET });
  env.browser = await launchBrowser();
});

after(async () => {
  await env.browser?.close();
  await env.server?.stop();
  env.stripe?.stop();
});

test('a standalone merchant checks out with Stripe and comes back to the new plan', async () => {
  const page = await (await env.browser.newContext()).newPage();
  await page.goto(`${env.server.base}/register`);
  await page.getByLabel('Email').fill(`stripe-${randomUUID()}@example.com`);
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByTestId('register-submit').click();
  await page.getByTestId('credits-summary').waitFor();
  await page.getByRole('link', { name: 'Billing' }).click();
  await page.getByTestId('plan-name').waitFor();
  assert.equal(await page.getByTestId('plan-name').innerText(), 'Free');
  assert.equal(await page.getByTestId('upgrade-checkout').count(), 3);
  await screenshot(page, 'billing-stripe-free');

  // Choosing Starter leaves for Stripe Checkout.
  await page.getByTestId('upgrade-starter').getByTestId('upgrade-checkout').click();
  await page.waitForURL(`${env.stripe.baseUrl}/c/pay/**`);
  const sessionId = new URL(page.url()).pathname.split('/').pop();
  assert.match(await page.locator('body').innerText(), /Checkout Session cs_/);

  // The merchant pays; Stripe's webhooks reach the service; Checkout returns to billing.
  const completed = await env.stripe.command({ op: 'complete', sessionId });
  assert.equal(completed.ok, true, JSON.stringify(completed));
  assert.ok(completed.statuses.every((status) => status === 200), JSON.stringify(completed));
  await page.goto(`${env.server.base}/billing?upgrade=success`);
  await page.getByTestId('upgrade-success').waitFor();
  await page.waitForFunction(() => document.querySelector('[data-hook="plan-name"]')?.textContent === 'Starter');
  assert.equal(await page.getByTestId('credits-remaining').innerText(), '1,000');
  assert.match(await page.getByTestId('plan-renews').innerText(), /Renews/);
  assert.equal(await page.getByTestId('upgrade-checkout').count(), 2, 'Pro and Scale remain');
  await screenshot(page, 'billing-stripe-starter');

  // Managing the subscription opens Stripe's customer portal.
  await page.getByTestId('manage-subscription').click();
  await page.waitForURL(`${env.stripe.baseUrl}/p/session/**`);
});
