import assert from 'node:assert/strict';
import { test } from 'node:test';
import { screenshot, signInstance, withServerAndBrowser } from './harness.mjs';

const env = withServerAndBrowser();

test('opened by the Wix dashboard with a signed instance, the app signs in by itself', async () => {
  const page = await (await env.browser.newContext()).newPage();
  const instance = signInstance();
  await page.goto(`${env.server.base}/?instance=${instance}&locale=en&viewMode=dashboard&cacheKiller=1`);
  await page.getByTestId('credits-summary').waitFor();
  assert.match(await page.getByTestId('credits-summary').innerText(), /200 \/ 200 credits/);
  assert.match(await page.getByTestId('plan-badge').innerText(), /free plan/i);
  await screenshot(page, 'embedded-home');

  await page.getByRole('link', { name: 'Account' }).click();
  await page.getByTestId('account-connection').waitFor();
  assert.equal(await page.getByTestId('logout').count(), 0, 'no logout in embedded mode');
  await page.goto(`${env.server.base}/login`);
  await page.getByTestId('credits-summary').waitFor();
  assert.equal(new URL(page.url()).pathname, '/', 'no login form in embedded mode');
  await screenshot(page, 'embedded-account');
});

test('a tampered instance shows the expired-session state, not a login form', async () => {
  const page = await (await env.browser.newContext()).newPage();
  const forged = signInstance({ secret: 'not-the-app-secret' });
  await page.goto(`${env.server.base}/?instance=${forged}&viewMode=dashboard`);
  await page.getByTestId('frame-error').waitFor();
  assert.match(await page.getByTestId('frame-error').innerText(), /reopen the app from your Wix dashboard/);
  assert.equal(await page.getByLabel('Password').count(), 0);
  await screenshot(page, 'embedded-tampered');
});
