import assert from 'node:assert/strict';
import { test } from 'node:test';
import { screenshot, withServerAndBrowser } from './harness.mjs';

const env = withServerAndBrowser();

test('register, log out, fail and succeed to log in', async () => {
  const page = await (await env.browser.newContext()).newPage();
  await page.goto(`${env.server.base}/`);
  await page.waitForURL('**/login');
  await page.getByLabel('Email').waitFor();
  await screenshot(page, 'login');

  await page.getByRole('link', { name: 'Create an account' }).click();
  await page.waitForURL('**/register');
  await page.getByLabel('Email').waitFor();
  await screenshot(page, 'register');
  await page.getByLabel('Email').fill('merchant@example.com');
  await page.getByLabel('Password').fill('short');
  await page.getByTestId('register-submit').click();
  await page.getByTestId('register-field-errors').waitFor();
  assert.match(await page.getByTestId('register-field-errors').innerText(), /Password must be at least 10 characters/);
  await screenshot(page, 'register-weak-password');

  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByLabel('Store name').fill('Merchant Shop');
  await page.getByTestId('register-submit').click();
  await page.getByTestId('credits-summary').waitFor();
  assert.match(await page.getByTestId('account-name').innerText(), /Merchant Shop/);
  assert.match(await page.getByTestId('credits-summary').innerText(), /200 \/ 200 credits/);
  await screenshot(page, 'home-after-register');

  await page.getByRole('link', { name: 'Account' }).click();
  assert.match(await page.getByTestId('account-email').innerText(), /merchant@example.com/);
  await screenshot(page, 'account-standalone');
  await page.getByTestId('logout').click();
  await page.waitForURL('**/login');

  await page.getByLabel('Email').fill('merchant@example.com');
  await page.getByLabel('Password').fill('not the password');
  await page.getByTestId('login-submit').click();
  await page.getByTestId('login-error').waitFor();
  assert.match(await page.getByTestId('login-error').innerText(), /email or password is not correct/);
  await screenshot(page, 'login-wrong-password');

  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByTestId('login-submit').click();
  await page.getByTestId('credits-summary').waitFor();
  assert.match(await page.getByTestId('credits-summary').innerText(), /200 \/ 200 credits/);
  await screenshot(page, 'home-after-login');
});

test('a taken email is explained on the form', async () => {
  const page = await (await env.browser.newContext()).newPage();
  await page.goto(`${env.server.base}/register`);
  await page.getByLabel('Email').fill('taken@example.com');
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByTestId('register-submit').click();
  await page.getByTestId('credits-summary').waitFor();

  const other = await (await env.browser.newContext()).newPage();
  await other.goto(`${env.server.base}/register`);
  await other.getByLabel('Email').fill('taken@example.com');
  await other.getByLabel('Password').fill('another good password');
  await other.getByTestId('register-submit').click();
  await other.getByTestId('register-error').waitFor();
  assert.match(await other.getByTestId('register-error').innerText(), /already exists/);
  await screenshot(other, 'register-email-taken');
});
