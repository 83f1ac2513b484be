// Starts the testkit fake binaries (built by `cargo build -p testkit --bins`, as
// scripts/test.sh does) for the conformance tests, which drive them with each vendor's
// official npm client.
import { spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const targetDir = process.env.CARGO_TARGET_DIR
  ? resolve(process.env.CARGO_TARGET_DIR)
  : resolve(here, '../target');

/** Starts `target/debug/<name>`, waits for the JSON line it prints with its address, and
 * returns that information with `command` (one JSON line out, one JSON answer back) and
 * `stop`. */
export async function startFake(name) {
  const child = spawn(resolve(targetDir, 'debug', name), [], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const pending = [];
  const info = await new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start`)), 15_000);
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
    lines.once('line', (line) => {
      clearTimeout(timer);
      resolvePromise(JSON.parse(line));
      lines.on('line', (answer) => pending.shift()?.(JSON.parse(answer)));
    });
  });
  return {
    ...info,
    command(message) {
      return new Promise((resolveAnswer) => {
        pending.push(resolveAnswer);
        child.stdin.write(`${JSON.stringify(message)}\n`);
      });
    },
    stop() {
      child.stdin.end();
      child.kill('SIGINT');
    },
  };
}
