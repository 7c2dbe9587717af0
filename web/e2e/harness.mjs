// Test harness of the browser tests: starts the real `deck serve` on a free
// port with a fresh data dir, launches Debian's Chromium through
// playwright-core, and cleans both up.

import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, stat, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const webDir = resolve(here, '..');
export const repoDir = resolve(webDir, '..');
export const screenshotsDir = join(repoDir, 'docs', 'screenshots');
const deckBin = process.env.DECK_BIN ?? '/root/.cache/deck-target/debug/deck';
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor(check, timeoutMs = 20_000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => null);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** The third-party recordings beside the repository (never edited). */
export const testdataDir = resolve(repoDir, '..', 'shared', 'testdata');

/** Starts `deck serve` (source `demo` unless `extraArgs` names one) and waits for /healthz. */
export async function startServer(extraArgs = []) {
  const dataDir = await mkdtemp(join(tmpdir(), 'deck-e2e-'));
  const port = await freePort();
  const source = extraArgs.includes('--source') ? [] : ['--source', 'demo'];
  const args = ['serve', '--port', String(port), '--data-dir', dataDir, ...source, ...extraArgs];
  const child = spawn(deckBin, args, {
    env: { ...process.env, DECK_WEB_DIR: join(webDir, 'dist'), RUST_LOG: process.env.RUST_LOG ?? 'warn' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  let exited = null;
  child.on('exit', (code) => (exited = code));
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitFor(async () => {
    if (exited !== null) throw new Error(`deck exited with ${exited}`);
    const response = await fetch(`${baseUrl}/healthz`);
    return response.ok;
  }, 30_000, 'deck to serve /healthz');
  return {
    baseUrl,
    dataDir,
    async stop() {
      if (exited === null) {
        child.kill('SIGTERM');
        await Promise.race([new Promise((r) => child.once('exit', r)), new Promise((r) => setTimeout(r, 5_000))]);
        if (exited === null) child.kill('SIGKILL');
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Launches headless Chromium. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}

/** The newest .eml in the server's outbox, as text. */
export async function newestMail(dataDir) {
  const outbox = join(dataDir, 'outbox');
  const names = (await readdir(outbox)).filter((name) => name.endsWith('.eml'));
  if (names.length === 0) return null;
  const withTimes = await Promise.all(names.map(async (name) => ({ name, time: (await stat(join(outbox, name))).mtimeMs })));
  withTimes.sort((a, b) => b.time - a.time);
  return readFile(join(outbox, withTimes[0].name), 'utf8');
}

/** The token of a `#/verify?token=` or `#/reset?token=` link in a mail (quoted-printable soft breaks undone). */
export function tokenFromMail(mail, route) {
  const unfolded = mail.replace(/=\r?\n/g, '').replace(/=3D/gi, '=');
  const match = new RegExp(`#/${route}\\?token=([A-Za-z0-9_\\-.~%]+)`).exec(unfolded);
  return match ? decodeURIComponent(match[1]) : null;
}

/** The newest mail in the outbox that names `email` (and passes `accept`), waited for. */
export function mailTo(dataDir, email, what, accept = () => true) {
  return waitFor(async () => {
    const text = await newestMail(dataDir);
    return text && text.includes(email) && accept(text) ? text : null;
  }, 15_000, what);
}

/** Signs up through the account dialog; returns the confirmation mail the server sent. */
export async function signUp(page, dataDir, email, password) {
  await page.locator('.account-button').click();
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('New password').fill(password);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.getByText('Check your e-mail').waitFor();
  return mailTo(dataDir, email, 'the confirmation mail');
}

/** Logs in through the account dialog and waits until the page says so. */
export async function logIn(page, email, password) {
  await page.locator('.account-button').click();
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel('E-mail').fill(email);
  await dialog.getByLabel('Password').fill(password);
  await dialog.getByRole('button', { name: 'Log in' }).click();
  await waitFor(async () => (await page.locator('#app').getAttribute('data-signed-in')) === 'true', 10_000, 'sign-in');
}
