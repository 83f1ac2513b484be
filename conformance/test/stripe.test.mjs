// The fake Stripe driven by Stripe's own Node library: customers, a subscription Checkout
// Session with automatic tax, the subscription list, and the webhook deliveries checked with
// stripe.webhooks.constructEvent.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';
import Stripe from 'stripe';
import { startFake } from '../fakes.mjs';

const WEBHOOK_SECRET = 'whsec_conformance_0123456789abcdef';

let fake;
let stripe;
let receiver;
const deliveries = [];

before(async () => {
  fake = await startFake('fake-stripe');
  const base = new URL(fake.baseUrl);
  stripe = new Stripe(fake.secretKey, {
    host: base.hostname,
    port: Number(base.port),
    protocol: 'http',
    maxNetworkRetries: 0,
  });
  receiver = createServer((request, response) => {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
      deliveries.push({ body: Buffer.concat(chunks), signature: request.headers['stripe-signature'] });
      response.writeHead(200).end();
    });
  });
  await new Promise((resolveListen) => receiver.listen(0, '127.0.0.1', resolveListen));
  const answer = await fake.command({
    op: 'endpoint',
    url: `http://127.0.0.1:${receiver.address().port}/stripe`,
    secret: WEBHOOK_SECRET,
  });
  assert.equal(answer.ok, true);
});

after(() => {
  fake?.stop();
  receiver?.close();
});

test('customers are created, retrieved, updated and listed', async () => {
  const created = await stripe.customers.create({
    email: 'ada@shop.example',
    name: 'Ada',
    metadata: { account: '42' },
    address: { country: 'FR' },
  });
  assert.match(created.id, /^cus_/);
  assert.equal(created.object, 'customer');
  const updated = await stripe.customers.update(created.id, { name: 'Ada L.', metadata: { plan: 'pro' } });
  assert.equal(updated.name, 'Ada L.');
  assert.deepEqual(updated.metadata, { account: '42', plan: 'pro' });
  const retrieved = await stripe.customers.retrieve(created.id);
  assert.equal(retrieved.email, 'ada@shop.example');
  for (const n of [1, 2, 3]) {
    await stripe.customers.create({ email: `c${n}@shop.example` });
  }
  const seen = [];
  for await (const customer of stripe.customers.list({ limit: 2 })) {
    seen.push(customer.id);
  }
  assert.equal(seen.length, 4, 'auto-pagination walks every page');
  assert.equal(new Set(seen).size, 4);
  const byEmail = await stripe.customers.list({ email: 'ada@shop.example' });
  assert.deepEqual(byEmail.data.map((customer) => customer.id), [created.id]);
  await assert.rejects(stripe.customers.retrieve('cus_missing'), (error) => {
    assert.equal(error.type, 'StripeInvalidRequestError');
    assert.equal(error.statusCode, 404);
    assert.equal(error.code, 'resource_missing');
    assert.equal(error.doc_url, 'https://stripe.com/docs/error-codes/resource-missing');
    return true;
  });
});

test('unknown parameters are refused the way Stripe refuses them', async () => {
  await assert.rejects(stripe.customers.create({ email: 'x@shop.example', favourite_colour: 'red' }), (error) => {
    assert.equal(error.code, 'parameter_unknown');
    assert.equal(error.param, 'favourite_colour');
    assert.equal(error.doc_url, 'https://stripe.com/docs/error-codes/parameter-unknown');
    return true;
  });
});

test('a subscription checkout with automatic tax completes and its webhooks verify', async () => {
  const customer = await stripe.customers.create({ email: 'buyer@shop.example' });
  const session = await stripe.checkout.sessions.create({
    mode: 'subscription',
    customer: customer.id,
    line_items: [{ price: 'price_pro', quantity: 1 }],
    automatic_tax: { enabled: true },
    subscription_data: { metadata: { account: '42' } },
    success_url: 'https://app.example/billing?done=1',
    cancel_url: 'https://app.example/billing',
  });
  assert.match(session.id, /^cs_test_/);
  assert.equal(session.automatic_tax.enabled, true);
  assert.equal((await stripe.checkout.sessions.retrieve(session.id)).status, 'open');

  const completed = await fake.command({ op: 'complete', sessionId: session.id });
  assert.equal(completed.ok, true);
  assert.ok(completed.statuses.every((status) => status === 200), JSON.stringify(completed));

  const expanded = await stripe.checkout.sessions.retrieve(session.id, { expand: ['subscription'] });
  assert.equal(expanded.status, 'complete');
  assert.equal(expanded.subscription.object, 'subscription');
  const subscriptions = await stripe.subscriptions.list({ customer: customer.id, status: 'all' });
  assert.equal(subscriptions.data.length, 1);
  assert.equal(subscriptions.data[0].status, 'active');
  assert.equal(subscriptions.data[0].metadata.account, '42');
  assert.equal(subscriptions.data[0].items.data[0].price.id, 'price_pro');

  assert.ok(deliveries.length >= 3, `${deliveries.length} deliveries`);
  const types = deliveries.map(({ body, signature }) => {
    const event = stripe.webhooks.constructEvent(body, signature, WEBHOOK_SECRET);
    return event.type;
  });
  assert.ok(types.includes('checkout.session.completed'), types.join(', '));
  assert.ok(types.includes('customer.subscription.created'), types.join(', '));
  const tampered = Buffer.from(deliveries[0].body.toString().replace('"livemode"', '"livemode" '));
  assert.throws(
    () => stripe.webhooks.constructEvent(tampered, deliveries[0].signature, WEBHOOK_SECRET),
    (error) => error.type === 'StripeSignatureVerificationError',
  );
});
