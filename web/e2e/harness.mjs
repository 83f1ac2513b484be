// Starts the real `optimizer` binary on a free port over a fresh SQLite data folder, and a
// real headless Chromium (Debian's package) to drive the built dashboard.
import { spawn } from 'node:child_process';
import { createHmac, randomBytes, randomUUID, sign } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, selectors } from 'playwright-core';

// WDS components take `dataHook`, rendered as `data-hook`.
selectors.setTestIdAttribute('data-hook');

const here = dirname(fileURLToPath(import.meta.url));
export const WIX_APP_ID = '2f1b6a6e-5d8c-4f3a-9a57-0c3c4d1e9b11';
export const WIX_SECRET = 'e2e-wix-app-secret';
const SCREENSHOTS = join(here, 'screenshots');
const BIN = resolve(here, '..', process.env.OPTIMIZER_BIN ?? '../target/debug/optimizer');

/** Starts `optimizer serve --port 0` (with its background worker, which runs syncs); resolves once it prints where it listens. */
export async function startServer({ demo = false, env = {} } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'optimizer-e2e-'));
  const args = ['serve', '--port', '0', ...(demo ? ['--demo'] : [])];
  const child = spawn(BIN, args, {
    env: {
      PATH: process.env.PATH,
      OPTIMIZER_DATA_DIR: dataDir,
      OPTIMIZER_WEB_DIR: resolve(here, '..', 'dist'),
      WIX_APP_ID,
      WIX_APP_SECRET: WIX_SECRET,
      RUST_LOG: 'warn',
      OPTIMIZER_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const found = await new Promise((resolvePromise, reject) => {
    const state = {};
    const timer = setTimeout(() => reject(new Error(`server did not start: ${JSON.stringify(state)}`)), 30_000);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    lines.on('line', (line) => {
      const listening = line.match(/listening on (http:\/\/\S+)/);
      const link = line.match(/Demo login \(single use\): (\S+)/);
      if (listening) state.base = listening[1];
      if (link) state.demoLink = link[1];
      if (state.base && (!demo || state.demoLink)) {
        clearTimeout(timer);
        resolvePromise(state);
      }
    });
  });
  return {
    ...found,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Saves a full-page screenshot of what the test sees, for people to look at. */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** A Wix dashboard instance signed as Wix signs it: base64url(HMAC-SHA256(payload)).payload */
export function signInstance({
  instanceId = randomUUID(),
  appId = WIX_APP_ID,
  secret = WIX_SECRET,
  expiresInMs = 4 * 3600_000,
} = {}) {
  const now = Date.now();
  const payload = Buffer.from(
    JSON.stringify({
      instanceId,
      appDefId: appId,
      signDate: new Date(now).toISOString(),
      uid: randomUUID(),
      permissions: 'OWNER',
      demoMode: false,
      siteOwnerId: randomUUID(),
      siteMemberId: randomUUID(),
      expirationDate: new Date(now + expiresInMs).toISOString(),
    }),
  ).toString('base64url');
  const signature = createHmac('sha256', secret).update(payload).digest('base64url');
  return `${signature}.${payload}`;
}

/** Starts a server and a browser before the file's tests and stops both after them. */
export function withServerAndBrowser(options = {}) {
  const env = {};
  before(async () => {
    env.server = await startServer(options);
    env.browser = await launchBrowser();
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.stop();
  });
  return env;
}

/** Starts the fake WooCommerce store (a testkit binary that `cargo test` builds). */
export async function startFakeWooCommerce() {
  const bin = resolve(dirname(BIN), 'fake-woocommerce');
  const child = spawn(bin, [], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const info = await new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error('fake WooCommerce did not start')), 15_000);
    child.once('exit', (code) => reject(new Error(`fake WooCommerce exited with ${code}`)));
    lines.once('line', (line) => {
      clearTimeout(timer);
      resolvePromise(JSON.parse(line));
    });
  });
  return {
    ...info,
    stop() {
      child.kill('SIGINT');
    },
  };
}

const KEYS = resolve(here, '../../crates/testkit/src/keys');
/** The app's webhook public key, as the server is configured with it (`WIX_PUBLIC_KEY`). */
export const WIX_WEBHOOK_PUBLIC_KEY = readFileSync(join(KEYS, 'wix_app_public.pem'), 'utf8');

/** A Wix webhook body as Wix sends it: an RS256 JWS whose `data` claim is the envelope
 * JSON, whose own `data` is the payload JSON (reference: wix.md §3.1). */
export function wixWebhook(instanceId, eventType, payload) {
  const privateKey = readFileSync(join(KEYS, 'wix_app_private.pem'), 'utf8');
  const iat = Math.floor(Date.now() / 1000);
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const header = encode({ alg: 'RS256', kid: 'qG1kD2dz' });
  const claims = encode({
    data: JSON.stringify({ instanceId, eventType, data: JSON.stringify(payload) }),
    iat,
    exp: iat + 300_000,
  });
  const signature = sign('RSA-SHA256', Buffer.from(`${header}.${claims}`), privateKey).toString('base64url');
  return `${header}.${claims}.${signature}`;
}

/** Starts the fake Wix APIs (a testkit binary); `command` sends one control line. */
export async function startFakeWix() {
  const bin = resolve(dirname(BIN), 'fake-wix');
  const child = spawn(bin, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const pending = [];
  let info = null;
  const ready = new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error('fake Wix did not start')), 15_000);
    child.once('exit', (code) => reject(new Error(`fake Wix exited with ${code}`)));
    lines.on('line', (line) => {
      const message = JSON.parse(line);
      if (!info) {
        info = message;
        clearTimeout(timer);
        resolvePromise(message);
      } else {
        pending.shift()?.(message);
      }
    });
  });
  await ready;
  return {
    ...info,
    command(message) {
      return new Promise((resolvePromise) => {
        pending.push(resolvePromise);
        child.stdin.write(`${JSON.stringify(message)}\n`);
      });
    },
    stop() {
      child.kill('SIGINT');
    },
  };
}
