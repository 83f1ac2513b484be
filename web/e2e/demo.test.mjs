import assert from 'node:assert/strict';
import { test } from 'node:test';
import { screenshot, withServerAndBrowser } from './harness.mjs';

const env = withServerAndBrowser({ demo: true });

test('the printed demo link signs in once, and the session survives a reload', async () => {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  await page.goto(env.server.demoLink);
  await page.getByTestId('credits-summary').waitFor();
  assert.equal(new URL(page.url()).pathname, '/');
  assert.match(await page.getByTestId('credits-summary').innerText(), /200 \/ 200 credits/);
  assert.match(await page.getByTestId('plan-badge').innerText(), /free plan/i);
  assert.match(await page.getByTestId('account-name').innerText(), /Demo store/);
  assert.match(await page.getByTestId('plan-name').innerText(), /Free/);
  await screenshot(page, 'demo-home');

  await page.reload();
  await page.getByTestId('credits-summary').waitFor();
  await page.getByRole('link', { name: 'Account' }).click();
  await page.getByTestId('account-email').waitFor();
  await screenshot(page, 'demo-account');

  const second = await (await env.browser.newContext()).newPage();
  await second.goto(env.server.demoLink);
  await second.getByTestId('demo-login-error').waitFor();
  assert.match(await second.getByTestId('demo-login-error').innerText(), /already used or has expired/);
  await screenshot(second, 'demo-link-reused');
  await context.close();
});
