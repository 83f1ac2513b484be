// The fake OpenAI API driven by OpenAI's own Node library: models, a chat completion and a
// streamed chat completion.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { startFake } from '../fakes.mjs';

let fake;
let openai;

before(async () => {
  fake = await startFake('fake-openai');
  openai = new OpenAI({ apiKey: fake.apiKey, baseURL: fake.baseUrl, maxRetries: 0 });
});

after(() => fake?.stop());

const messages = [
  { role: 'system', content: 'You improve product titles.' },
  { role: 'user', content: '<product>\n{"title": "linen shirt", "brand": "Acme"}\n</product>\nWrite the title.' },
];

test('models are listed and retrieved', async () => {
  const ids = [];
  for await (const model of openai.models.list()) {
    ids.push(model.id);
  }
  assert.ok(ids.includes('gpt-4o-mini'), ids.join(', '));
  const model = await openai.models.retrieve('gpt-4o-mini');
  assert.equal(model.object, 'model');
  await assert.rejects(openai.models.retrieve('gpt-none'), (error) => {
    assert.equal(error.status, 404);
    assert.equal(error.code, 'model_not_found');
    return true;
  });
});

test('a chat completion answers from the product', async () => {
  const completion = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages });
  assert.equal(completion.object, 'chat.completion');
  assert.equal(completion.choices[0].message.content, 'Linen Shirt');
  assert.equal(completion.choices[0].finish_reason, 'stop');
  assert.ok(completion.usage.total_tokens > 0);
});

test('a streamed chat completion yields its deltas', async () => {
  const stream = await openai.chat.completions.create({
    model: 'gpt-4o-mini',
    messages,
    stream: true,
    stream_options: { include_usage: true },
  });
  let content = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks += 1;
    assert.equal(chunk.object, 'chat.completion.chunk');
    content += chunk.choices[0]?.delta?.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
    usage = chunk.usage ?? usage;
  }
  assert.ok(chunks >= 3, `${chunks} chunks`);
  assert.equal(content, 'Linen Shirt');
  assert.equal(finish, 'stop');
  assert.ok(usage.total_tokens > 0);

  const helper = openai.chat.completions.stream({ model: 'gpt-4o-mini', messages });
  const final = await helper.finalChatCompletion();
  assert.equal(final.choices[0].message.content, 'Linen Shirt');
});
