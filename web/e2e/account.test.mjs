// Browser tests of the deck library and the account dialog against the real
// `deck serve` (demo source, its outbox for the mails) in Debian's Chromium:
// rename, delete, export and import of decks, a deck-wide mute that hides
// posts, a real touch swipe on a phone; resend of the confirmation mail,
// change of password, log out (which leaves nothing of the deck behind) and
// log out everywhere (which ends the other browser's session).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { launchBrowser, logIn, mailTo, signUp, startServer, tokenFromMail, waitFor } from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  await waitFor(async () => {
    const response = await fetch(`${server.baseUrl}/api/timeline?q=BTS&limit=20`);
    return (await response.json()).posts.length >= 20;
  }, 60_000, '20 stored BTS posts');
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function openDeck({ viewport = { width: 1400, height: 900 }, ...options } = {}) {
  const context = await browser.newContext({ locale: 'en-US', viewport, ...options });
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error('page error:', error));
  await page.goto(server.baseUrl);
  return { context, page };
}

/** The decks dialog, opened. */
async function openDecks(page) {
  await page.locator('.decks-button').click();
  const decks = page.locator('dialog.decks-dialog');
  await decks.waitFor({ state: 'visible' });
  return decks;
}

/** `POST /api/auth/login` as an API client: its status and body (the body holds the refresh token). */
async function apiLogin(email, password) {
  const response = await fetch(`${server.baseUrl}/api/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  return { status: response.status, body: await response.json().catch(() => null) };
}

/** `POST /api/auth/refresh` as an API client: its status and body (a 200 holds the next refresh token). */
async function apiRefresh(refreshToken) {
  const response = await fetch(`${server.baseUrl}/api/auth/refresh`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ refresh_token: refreshToken }),
  });
  return { status: response.status, body: await response.json().catch(() => null) };
}

/** The refresh endpoint's status from inside a page (its cookie). */
function refreshStatus(page) {
  return page.evaluate(async () => (await fetch('/api/auth/refresh', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' })).status);
}

describe('decks and accounts', () => {
  test('decks: rename and delete, export as JSON and import it back, and a deck-wide mute hides the posts it names', async () => {
    const { context, page } = await openDeck();
    const bts = page.getByRole('feed', { name: 'BTS', exact: true });
    await bts.locator('article').nth(3).waitFor();
    const answers = [];
    page.on('dialog', (dialog) => dialog.accept(dialog.type() === 'prompt' ? answers.shift() : undefined));

    // Rename the first deck.
    const decks = await openDecks(page);
    answers.push('Comeback week');
    await decks.locator('.decks-item.current').getByRole('button', { name: 'Rename' }).click();
    await decks.locator('.decks-item.current .decks-open').filter({ hasText: 'Comeback week' }).waitFor();

    // Export it: a JSON file with its columns.
    const [download] = await Promise.all([page.waitForEvent('download'), decks.getByRole('button', { name: 'Export JSON' }).click()]);
    const exported = JSON.parse(await readFile(await download.path(), 'utf8'));
    assert.equal(exported.name, 'Comeback week');
    assert.ok(exported.columns.some((column) => column.query === 'BTS'), JSON.stringify(exported.columns));

    // Import it under another name: a second deck with the same columns, opened.
    const file = join(server.dataDir, 'shared-deck.json');
    await writeFile(file, JSON.stringify({ ...exported, name: 'From a friend' }));
    await decks.locator('input[type="file"]').setInputFiles(file);
    await decks.locator('.decks-item.current .decks-open').filter({ hasText: 'From a friend' }).waitFor();
    assert.equal(await decks.locator('.decks-item').count(), 2);
    await page.keyboard.press('Escape');
    await bts.waitFor();

    // A file that is not a deck is refused, and the decks stay as they were.
    await openDecks(page);
    await writeFile(file, '{"columns": "nope"}');
    await decks.locator('input[type="file"]').setInputFiles(file);
    await decks.locator('.decks-status').filter({ hasText: 'That file is not a deck.' }).waitFor();
    assert.equal(await decks.locator('.decks-item').count(), 2);

    // Delete the imported deck (after the confirmation): the renamed one is back.
    await decks.locator('.decks-item.current').getByRole('button', { name: 'Delete' }).click();
    await waitFor(async () => (await decks.locator('.decks-item').count()) === 1, 5_000, 'the deck deleted');
    assert.equal((await decks.locator('.decks-item.current .decks-open').textContent()).trim(), 'Comeback week');
    await page.keyboard.press('Escape');

    // Mute the author of a post on screen, deck-wide: their posts leave the column, the others stay.
    await bts.locator('.column-body').hover();
    const handle = await bts.locator('article .author-link').first().getAttribute('data-user');
    const byThem = bts.locator(`article .author-link[data-user="${handle}"]`);
    assert.ok((await byThem.count()) > 0);
    await openDecks(page);
    await decks.locator('textarea.decks-mutes').fill(`@${handle}`);
    await decks.getByRole('button', { name: 'Apply' }).click();
    await page.keyboard.press('Escape');
    await waitFor(async () => (await byThem.count()) === 0, 5_000, `the posts of @${handle} hidden`);
    assert.ok((await bts.locator('article').count()) > 0, 'the other posts stay');
    await context.close();
  });

  test('on a phone, a touch swipe moves to the next column and the switcher follows', async () => {
    const { context, page } = await openDeck({ viewport: { width: 390, height: 800 }, hasTouch: true, isMobile: true });
    await page.getByRole('feed', { name: 'BTS', exact: true }).locator('article').first().waitFor();
    const tabs = page.locator('.column-switcher .switcher-tab');
    await tabs.nth(1).waitFor();
    assert.equal(await tabs.nth(0).getAttribute('aria-current'), 'true');
    // A finger drawn from right to left over the posts (not the header),
    // through Chromium's touch input: the deck moves to the next column. (The
    // posts scroll vertically; with their overscroll contained on both axes
    // the swipe moved nothing.)
    const card = await page.getByRole('feed', { name: 'BTS', exact: true }).locator('article').first().boundingBox();
    const y = card.y + card.height / 2;
    const cdp = await context.newCDPSession(page);
    const touch = (type, x) => cdp.send('Input.dispatchTouchEvent', { type, touchPoints: type === 'touchEnd' ? [] : [{ x, y }] });
    await touch('touchStart', 340);
    for (let step = 1; step <= 10; step++) {
      await touch('touchMove', 340 - step * 28);
      await page.evaluate(() => new Promise((done) => requestAnimationFrame(done)));
    }
    await touch('touchEnd');
    await waitFor(async () => (await tabs.nth(1).getAttribute('aria-current')) === 'true', 5_000, 'the switcher to follow the swipe');
    const deck = page.locator('#deck');
    // The deck snaps to the second column, whole.
    await waitFor(async () => {
      const [left, width] = await deck.evaluate((node) => [node.scrollLeft, node.clientWidth]);
      return Math.abs(left - width) <= 1;
    }, 5_000, 'the second column snapped into view');
    await context.close();
  });

  test('resend the confirmation, change the password, log out (nothing of the deck stays), and log out everywhere', async () => {
    const email = `resend${Date.now()}@example.com`;
    const password = 'first-purple-ocean-7';
    const changed = 'second-purple-ocean-8';
    const { context, page } = await openDeck();
    const firstToken = tokenFromMail(await signUp(page, server.dataDir, email, password), 'verify');

    // The first mail is lost: login says the address may be unconfirmed and offers a resend.
    await page.getByRole('dialog').getByRole('button', { name: 'Log in' }).first().click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('E-mail').fill(email);
    await dialog.getByLabel('Password').fill(password);
    await dialog.getByRole('button', { name: 'Log in' }).click();
    await dialog.getByText('the address is not confirmed yet').waitFor();
    await dialog.getByRole('button', { name: 'Resend the confirmation e-mail' }).click();
    await dialog.getByLabel('E-mail').fill(email);
    await dialog.getByRole('button', { name: 'Resend the confirmation e-mail' }).click();
    await dialog.getByText('we sent it a new link').waitFor();
    const secondMail = await mailTo(server.dataDir, email, 'a second confirmation mail with a new link', (text) => {
      const found = tokenFromMail(text, 'verify');
      return found !== null && found !== firstToken;
    });
    const token = tokenFromMail(secondMail, 'verify');
    await page.goto(`${server.baseUrl}/#/verify?token=${encodeURIComponent(token)}`);
    await dialog.getByLabel('Password').fill(password);
    await dialog.getByRole('button', { name: 'Confirm e-mail' }).click();
    await page.getByText('Your e-mail is confirmed').waitFor();
    await page.keyboard.press('Escape');
    await logIn(page, email, password);

    // Change the password in the account dialog: the old one stops working.
    // (Every login below counts against the account's limit of 5 a minute
    // from one address, so the test logs in no more than that.)
    await page.locator('.account-button').click();
    await dialog.getByRole('button', { name: 'Change password' }).click();
    await dialog.getByLabel('Current password').fill(password);
    await dialog.getByLabel('New password').fill(changed);
    await dialog.getByRole('button', { name: 'Change password' }).click();
    await dialog.getByText('Your password is changed').waitFor();
    assert.equal((await apiLogin(email, password)).status, 401, 'the old password');
    await page.keyboard.press('Escape');
    assert.equal(await refreshStatus(page), 200, 'this browser stays signed in');

    // A column and a mute of this account, saved to the server.
    await page.getByRole('searchbox').fill('#ARMY');
    await page.getByRole('searchbox').press('Enter');
    await page.getByRole('feed', { name: '#ARMY', exact: true }).waitFor();
    const decks = await openDecks(page);
    await decks.locator('textarea.decks-mutes').fill('spoiler');
    await decks.getByRole('button', { name: 'Apply' }).click();
    await page.keyboard.press('Escape');
    await waitFor(async () => {
      const access = await page.evaluate(() => JSON.parse(localStorage.getItem('deck.session') ?? 'null')?.access);
      const saved = await (await fetch(`${server.baseUrl}/api/me/deck`, { headers: { Authorization: `Bearer ${access}` } })).json();
      return saved.columns?.some((column) => column.query === '#ARMY') && saved.mutes?.includes('spoiler');
    }, 10_000, 'the deck saved on the server');

    // A second browser logs in with the new password and finds the deck.
    const other = await openDeck();
    await logIn(other.page, email, changed);
    await other.page.getByRole('feed', { name: '#ARMY', exact: true }).waitFor();

    // Log out in the first: the deck and its mutes leave that browser with
    // its session; the second browser's session goes on.
    await page.locator('.account-button').click();
    await dialog.getByRole('button', { name: 'Log out', exact: true }).click();
    await waitFor(async () => (await page.locator('#app').getAttribute('data-signed-in')) === 'false', 10_000, 'signed out');
    await page.getByRole('feed', { name: 'BTS', exact: true }).waitFor();
    assert.equal(await page.getByRole('feed', { name: '#ARMY', exact: true }).count(), 0);
    const left = await page.evaluate(() => JSON.stringify({ ...localStorage }));
    assert.ok(!left.includes('#ARMY') && !left.includes('spoiler'), left);
    assert.equal(await refreshStatus(page), 401, 'the session of the browser that logged out ended');
    assert.equal(await refreshStatus(other.page), 200, 'the other browser stays signed in');

    // "Log out everywhere" in the second browser ends every session of the
    // account, also one it never saw (an API client's).
    const api = await apiLogin(email, changed);
    assert.equal(api.status, 200);
    // Its token works (and rotates: the one it gets back is the live one).
    const rotated = await apiRefresh(api.body.refresh_token);
    assert.equal(rotated.status, 200);
    await other.page.locator('.account-button').click();
    await other.page.getByRole('dialog').getByRole('button', { name: 'Log out everywhere' }).click();
    await waitFor(async () => (await other.page.locator('#app').getAttribute('data-signed-in')) === 'false', 10_000, 'signed out');
    assert.equal(await other.page.getByRole('feed', { name: '#ARMY', exact: true }).count(), 0);
    assert.equal(await refreshStatus(other.page), 401);
    assert.equal((await apiRefresh(rotated.body.refresh_token)).status, 401, 'the API client\'s session ended too');
    await other.context.close();
    await context.close();
  });
});
