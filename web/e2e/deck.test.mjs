// Browser tests of the web client against the real `deck serve` (demo
// source) in Debian's Chromium: first screen, search, live posts, history,
// hashtag columns, held-back posts, accounts with a saved deck, Korean,
// reload, and screenshots of both themes in both languages.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { launchBrowser, logIn, screenshotsDir, signUp, startServer, tokenFromMail, waitFor } from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  // Let the demo stream store enough posts for more than one page of history.
  await waitFor(async () => {
    const response = await fetch(`${server.baseUrl}/api/timeline?q=BTS&limit=100`);
    const body = await response.json();
    return body.posts.length >= 100;
  }, 60_000, '100 stored BTS posts');
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A fresh page (own context, so own localStorage) in English, opened on the deck. */
async function openDeck({ locale = 'en-US', colorScheme = 'dark', viewport = { width: 1400, height: 900 } } = {}) {
  const context = await browser.newContext({ locale, colorScheme, viewport });
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error('page error:', error));
  await page.goto(server.baseUrl);
  return { context, page };
}

/**
 * Puts the pointer over a column, which holds its new posts back, and waits
 * until what it draws is settled: a column scrolled back into view draws the
 * posts it took in while off screen at its next frame, so cards read before
 * that frame may be gone from it after.
 */
async function holdStill(feed) {
  await feed.locator('.column-body').hover();
  await waitFor(async () => (await feed.getAttribute('data-offscreen')) === null, 5_000, 'the column back on screen');
  await feed.page().evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
}

/** Ids of the posts rendered in a column. */
function articleIds(feed) {
  return feed.locator('article').evaluateAll((nodes) => nodes.map((node) => node.dataset.id));
}

describe('the deck', () => {
  test('first screen: a BTS column with posts arriving, and the trends column', async () => {
    const { context, page } = await openDeck();
    const bts = page.getByRole('feed', { name: /BTS/ });
    await bts.locator('article').first().waitFor();
    const first = await articleIds(bts);
    await waitFor(async () => {
      const now = await articleIds(bts);
      return now.some((id) => !first.includes(id));
    }, 20_000, 'a live post in the BTS column');
    const trends = page.getByRole('feed', { name: /Trends/ });
    await trends.waitFor();
    await trends.locator('.trends-hashtags a').first().waitFor();
    assert.match(await trends.locator('.trends-hashtags a').first().textContent(), /^#/);
    await bts.locator('article a[href^="#/tag/"]').first().waitFor();
    assert.equal(await page.getByRole('searchbox').count(), 1);
    // The first screen uses the width it has: the columns and the "add column"
    // chooser beside them fill the 1,400-px window, and an example adds its column.
    const chooser = page.getByRole('region', { name: 'Add a column' });
    const filled = await page.evaluate(() => {
      const deck = document.querySelector('#deck').getBoundingClientRect();
      const last = document.querySelector('.add-column').getBoundingClientRect();
      return (last.right - deck.left) / deck.width;
    });
    assert.ok(filled > 0.9, `the deck fills ${Math.round(filled * 100)} % of the width`);
    assert.deepEqual(await chooser.locator('.add-column-kind').allTextContents(), ['Search', 'Hashtag', 'User', 'Mentions', 'Media', 'Trends']);
    await chooser.locator('.add-column-example').filter({ hasText: '#방탄소년단' }).click();
    await page.getByRole('feed', { name: '#방탄소년단', exact: true }).waitFor();
    await context.close();
  });

  test('the search box adds a column that receives live posts; a bad query shows where it is wrong', async () => {
    const { context, page } = await openDeck();
    const box = page.getByRole('searchbox');
    await box.fill('"unclosed');
    await box.press('Enter');
    await page.locator('.search-error-message').waitFor();
    assert.equal(await page.getByRole('feed', { name: '"unclosed' }).count(), 0);
    assert.equal(await page.locator('.search-error-position').count(), 1);

    await box.fill('lang:ko');
    await box.press('Enter');
    const column = page.getByRole('feed', { name: 'lang:ko' });
    await column.waitFor();
    await waitFor(async () => (await column.getAttribute('data-state')) === 'live', 20_000, 'the column to go live');
    const first = await articleIds(column);
    await waitFor(async () => (await articleIds(column)).some((id) => !first.includes(id)), 30_000, 'a live post in the new column');
    await context.close();
  });

  test('scrolling down loads older posts', async () => {
    const { context, page } = await openDeck();
    const bts = page.getByRole('feed', { name: /BTS/ });
    await bts.locator('article').first().waitFor();
    const setSize = async () => Number(await bts.locator('article').first().getAttribute('aria-setsize'));
    const initial = await setSize();
    await waitFor(async () => {
      await bts.locator('.column-body').evaluate((body) => body.scrollTo({ top: body.scrollHeight }));
      return (await setSize()) > initial + 20;
    }, 20_000, 'older posts to load');
    await context.close();
  });

  test('clicking a hashtag adds a hashtag column; clicking a user adds a user column', async () => {
    const { context, page } = await openDeck();
    const bts = page.getByRole('feed', { name: 'BTS', exact: true });
    const feedsBefore = await page.getByRole('feed').count();
    await bts.locator('article a[href^="#/tag/"]').first().waitFor();
    // The pointer over the column holds new posts back. A card can still be
    // drawn again (a retweet folding into it), so the links are found by
    // what they point to, not by the card they were first seen in.
    await holdStill(bts);
    const firstTagLink = bts.locator('article a[href^="#/tag/"]').first();
    const tagHref = await firstTagLink.getAttribute('href');
    const tag = (await firstTagLink.textContent()).trim();
    const tagLink = bts.locator(`article a[href="${tagHref}"]`).first();
    await tagLink.click();
    const tagColumn = page.getByRole('feed', { name: tag, exact: true });
    await tagColumn.waitFor();
    assert.equal(await page.getByRole('feed').count(), feedsBefore + 1);
    await tagColumn.locator('article').first().waitFor();

    await holdStill(bts);
    const handle = await bts.locator('article').nth(2).locator('.author-link').first().getAttribute('data-user');
    const author = bts.locator(`article .author-link[data-user="${handle}"]`).first();
    await author.click();
    await page.getByRole('feed', { name: `Posts by @${handle}`, exact: true }).waitFor();
    // Clicking what is already open focuses it instead of adding a duplicate.
    // Each column opened above holds posts with its own link. (The cards
    // clicked in BTS may be gone from it by now: a click focuses the new
    // column, the deck scrolls to it and BTS, no longer under the pointer,
    // takes in new posts.)
    const feeds = await page.getByRole('feed').count();
    const userColumn = page.getByRole('feed', { name: `Posts by @${handle}`, exact: true });
    for (const [column, link] of [
      [tagColumn, `article a[href="${tagHref}" i]`],
      [userColumn, `article .author-link[data-user="${handle}"]`],
    ]) {
      await holdStill(column);
      await column.locator(link).first().click();
    }
    assert.equal(await page.getByRole('feed').count(), feeds);
    // Typing `@x` asks for the posts that mention x: a column of its own, titled apart from x's posts.
    await page.getByRole('searchbox').fill(`@${handle}`);
    await page.getByRole('searchbox').press('Enter');
    await page.getByRole('feed', { name: `Mentions of @${handle}`, exact: true }).waitFor();
    assert.equal(await page.getByRole('feed', { name: `Posts by @${handle}`, exact: true }).count(), 1);
    assert.equal(await page.getByRole('feed').count(), feeds + 1);
    await context.close();
  });

  test('deep links open (or focus) a column on load, in a new tab and after a reload', async () => {
    const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1400, height: 900 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.baseUrl });
    const page = await context.newPage();
    page.on('pageerror', (error) => console.error('page error:', error));
    await page.goto(`${server.baseUrl}/#/tag/kpop`);
    const kpop = page.getByRole('feed', { name: /kpop/ });
    await kpop.waitFor();
    await page.reload();
    await kpop.waitFor();
    assert.equal(await kpop.count(), 1, 'a reload focuses the column instead of adding another');

    // A second tab of the same browser: the deck is shared, the link focuses or adds.
    const tab = await context.newPage();
    await tab.goto(`${server.baseUrl}/#/user/${encodeURIComponent('fan_01')}`);
    await tab.getByRole('feed', { name: 'Posts by @fan_01', exact: true }).waitFor();
    await tab.goto(`${server.baseUrl}/#/search?q=${encodeURIComponent('lang:ko ARMY')}`);
    const search = tab.getByRole('feed', { name: 'lang:ko ARMY', exact: true });
    await search.waitFor();
    await tab.getByRole('feed', { name: /kpop/ }).waitFor();

    // The column menu copies the link, and the link gives the same column back.
    await search.locator('.copy-link-button').click();
    const link = await waitFor(() => tab.evaluate(() => navigator.clipboard.readText()), 5_000, 'the copied link');
    assert.equal(new URL(link).hash, `#/search?q=${encodeURIComponent('lang:ko ARMY')}`);
    const fresh = await browser.newContext({ locale: 'ko-KR' });
    const other = await fresh.newPage();
    await other.goto(link);
    await other.getByRole('feed', { name: 'lang:ko ARMY', exact: true }).waitFor();
    await other.goto(`${server.baseUrl}/#/user/fan_02`);
    await other.getByRole('feed', { name: '@fan_02 님의 글', exact: true }).waitFor();
    await fresh.close();
    await context.close();
  });

  test('a post opens in a detail view (Enter or click), Esc closes it; trends read in accounts', async () => {
    const { context, page } = await openDeck();
    const bts = page.getByRole('feed', { name: 'BTS', exact: true });
    await bts.locator('article').nth(2).waitFor();
    await holdStill(bts);
    const id = await bts.locator('article').nth(1).getAttribute('data-id');
    await bts.locator(`article[data-id="${id}"] .count-likes`).click();
    const dialog = page.locator('dialog.post-detail');
    await dialog.waitFor({ state: 'visible' });
    assert.equal(await dialog.locator('.post-detail-main').getAttribute('data-id'), id);
    await dialog.locator('.post-detail-replies').waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    // From the keyboard: focus a card and press Enter.
    await holdStill(bts);
    const second = await bts.locator('article').nth(1).getAttribute('data-id');
    await bts.locator(`article[data-id="${second}"]`).focus();
    await page.keyboard.press('Enter');
    await waitFor(async () => (await dialog.locator('.post-detail-main').getAttribute('data-id')) === second, 5_000, 'the focused post in the detail view');
    await dialog.waitFor({ state: 'visible' });
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    // Trending rows say the accounts added and "× usual" or "new", never a bare score (docs/trends.md).
    const rising = page.locator('.trends-rising .trend-count').first();
    await rising.waitFor({ timeout: 30_000 });
    assert.match(await rising.textContent(), /^[+-]\d+ accounts · (new|[\d.]+× usual)$/);
    await context.close();
  });

  test('the detail view shows the conversation Deck stored: the post a reply answers above it, and the reply under that post', async () => {
    // A demo reply whose parent is stored, both recent enough for what the
    // page reads (found through the API, as a reader would come upon them):
    // each in the first page of its author's column, the parent in its
    // author's newest 100 and the reply in the newest 100 replies to them.
    const timeline = async (q, limit) => (await (await fetch(`${server.baseUrl}/api/timeline?q=${encodeURIComponent(q)}&limit=${limit}`)).json()).posts;
    const near = (posts, id, within) => {
      const at = posts.findIndex((post) => post.id === id);
      return at >= 0 && at < within;
    };
    let pair = null;
    for (const reply of (await timeline('BTS', 100)).filter((post) => post.kind === 'reply' && post.reply_to?.post_id && post.reply_to?.handle)) {
      const parentAuthor = await timeline(`from:${reply.reply_to.handle}`, 100);
      const parent = parentAuthor.find((post) => post.id === reply.reply_to.post_id);
      if (!parent || !near(parentAuthor, parent.id, 20)) continue;
      if (!near(await timeline(`from:${reply.author.handle}`, 40), reply.id, 20)) continue;
      if (!near(await timeline(`to:${parent.author.handle}`, 100), reply.id, 50)) continue;
      pair = { reply, parent };
      break;
    }
    assert.ok(pair, 'a stored reply to a stored post, both recent, among the newest BTS posts');
    const { reply, parent } = pair;
    const { context, page } = await openDeck();
    const dialog = page.locator('dialog.post-detail');
    const openFrom = async (handle, id) => {
      await page.goto(`${server.baseUrl}/#/user/${encodeURIComponent(handle)}`);
      const column = page.getByRole('feed', { name: `Posts by @${handle}`, exact: true });
      await column.locator('article').first().waitFor();
      await holdStill(column);
      // The list draws only the cards near the view: scroll down to the post.
      const card = column.locator(`article[data-id="${id}"]`);
      for (let step = 0; step < 30 && (await card.count()) === 0; step++) {
        await column.locator('.column-body').evaluate((body) => (body.scrollTop += body.clientHeight * 0.8));
        await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
      }
      await card.scrollIntoViewIfNeeded();
      // A reply's text starts with a link (@parent); the counts are plain card.
      await column.locator(`article[data-id="${id}"] .count-likes`).click();
      await dialog.waitFor({ state: 'visible' });
      assert.equal(await dialog.locator('.post-detail-main').getAttribute('data-id'), id);
    };
    // The reply: the post it answers above it.
    await openFrom(reply.author.handle, reply.id);
    await dialog.locator(`.post-detail-parents article[data-id="${parent.id}"]`).waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    // The post: the reply under it.
    await openFrom(parent.author.handle, parent.id);
    await dialog.locator(`.post-detail-reply-list article[data-id="${reply.id}"]`).waitFor();
    await page.keyboard.press('Escape');
    await context.close();
  });

  test('sideways wheel anywhere moves the deck; 1–9 jump to columns; a removed column comes back with Undo', async () => {
    const { context, page } = await openDeck({ viewport: { width: 900, height: 800 } });
    for (const query of ['#ARMY', 'lang:ko', 'lang:en']) {
      await page.getByRole('searchbox').fill(query);
      await page.getByRole('searchbox').press('Enter');
      await page.getByRole('feed', { name: query, exact: true }).waitFor();
    }
    const deck = page.locator('#deck');
    await deck.evaluate((node) => (node.scrollLeft = 0));
    const bts = page.getByRole('feed', { name: 'BTS', exact: true });
    await bts.locator('article').first().waitFor();
    const box = await bts.locator('.column-body').boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.wheel(300, 0);
    await waitFor(async () => (await deck.evaluate((node) => node.scrollLeft)) > 100, 5_000, 'a sideways wheel over the posts to move the deck');
    await deck.evaluate((node) => (node.scrollLeft = 0));
    await page.keyboard.down('Shift');
    await page.mouse.wheel(0, 300);
    await page.keyboard.up('Shift');
    await waitFor(async () => (await deck.evaluate((node) => node.scrollLeft)) > 100, 5_000, 'Shift+wheel to move the deck');

    await page.locator('body').click({ position: { x: 5, y: 5 } });
    await page.keyboard.press('3');
    await waitFor(() => page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 5_000, 'focus').then((label) => assert.equal(label, '#ARMY'));
    const feeds = await page.getByRole('feed').count();
    await page.getByRole('feed', { name: '#ARMY', exact: true }).locator('.remove-button').click();
    assert.equal(await page.getByRole('feed').count(), feeds - 1);
    await page.locator('.toast-action').click();
    await page.getByRole('feed', { name: '#ARMY', exact: true }).waitFor();
    const order = await page.getByRole('feed').evaluateAll((nodes) => nodes.map((node) => node.getAttribute('aria-label')));
    assert.equal(order[2], '#ARMY', `the column returns to its place: ${order}`);
    // Alt+← moves the focused column one place left; the "add column" panel stays last.
    await page.getByRole('feed', { name: '#ARMY', exact: true }).focus();
    await page.keyboard.press('Alt+ArrowLeft');
    await waitFor(async () => {
      const moved = await page.getByRole('feed').evaluateAll((nodes) => nodes.map((node) => node.getAttribute('aria-label')));
      return moved[1] === '#ARMY' && moved[2] === order[1];
    }, 5_000, 'the column moved one place left');
    assert.equal(await deck.evaluate((node) => node.lastElementChild?.classList.contains('add-column')), true, 'the add-column panel is last');
    await context.close();
  });

  test('a column out of view draws no cards until it is scrolled back, then draws the posts it received', async () => {
    const context = await browser.newContext({ locale: 'en-US', viewport: { width: 900, height: 800 } });
    const page = await context.newPage();
    page.on('pageerror', (error) => console.error('page error:', error));
    // The posts the socket delivers, by subscription, as the page receives them.
    const delivered = [];
    page.on('websocket', (socket) =>
      socket.on('framereceived', ({ payload }) => {
        const frame = typeof payload === 'string' ? JSON.parse(payload) : null;
        // A retweet's card is its original's (retweets are folded into one card).
        if (frame?.type === 'post') delivered.push({ column: frame.column, card: frame.post.retweeted?.id ?? frame.post.id });
      }),
    );
    await page.goto(server.baseUrl);
    for (const query of ['lang:ko', 'lang:en']) {
      await page.getByRole('searchbox').fill(query);
      await page.getByRole('searchbox').press('Enter');
      await page.getByRole('feed', { name: query, exact: true }).waitFor();
    }
    const deck = page.locator('#deck');
    const bts = page.getByRole('feed', { name: 'BTS', exact: true });
    const columnId = await bts.getAttribute('data-column-id');
    await deck.evaluate((node) => (node.scrollLeft = 0));
    await bts.locator('article').first().waitFor();
    await deck.evaluate((node) => (node.scrollLeft = node.scrollWidth));
    await page.locator('[role=feed][aria-label="BTS"][data-offscreen]').waitFor({ state: 'attached' });
    // Every card the column draws from now on, in order.
    await bts.evaluate((node) => {
      window.__drawn = [];
      new MutationObserver((records) => {
        for (const record of records) for (const added of record.addedNodes) if (added.nodeName === 'ARTICLE') window.__drawn.push(added.dataset.id);
      }).observe(node, { childList: true, subtree: true });
    });
    const from = delivered.length;
    const forBts = () => delivered.slice(from).filter((post) => post.column.startsWith(`${columnId}~`));
    // Live posts keep coming to the column while it is out of view; forty of them span several
    // of its beats (at most 2 s each), at each of which a column in view would draw.
    await waitFor(async () => forBts().length >= 40, 60_000, 'forty BTS posts delivered while the column is out of view');
    assert.deepEqual(await page.evaluate(() => window.__drawn), [], 'no card drawn out of view');
    // Back in view, it draws cards of the posts delivered to it since it left.
    await deck.evaluate((node) => (node.scrollLeft = 0));
    await waitFor(
      async () => {
        const received = new Set(forBts().map((post) => post.card));
        return (await page.evaluate(() => window.__drawn)).some((id) => received.has(id));
      },
      5_000,
      'the posts delivered out of view drawn once the column is back in view',
    );
    assert.equal(await bts.getAttribute('data-offscreen'), null);
    await context.close();
  });

  test('cards show pictures from Deck\'s own origin with alt text, their space kept before they arrive', async () => {
    const response = await fetch(`${server.baseUrl}/api/timeline?q=${encodeURIComponent('filter:media')}&limit=20`);
    const body = await response.json();
    // The demo draws pictures for a quarter of its posts, so a media column always has some.
    assert.ok(body.posts.some((post) => Array.isArray(post.media) && post.media.length > 0), 'posts of a media column carry `media`');
    const { context, page } = await openDeck();
    // Pictures are held back until the card is measured, to see that their arrival moves nothing.
    let release;
    const held = new Promise((resolve) => (release = resolve));
    await page.route('**/media/**', async (route) => {
      await held;
      await route.continue();
    });
    await page.getByRole('searchbox').fill('filter:media');
    await page.getByRole('searchbox').press('Enter');
    const column = page.getByRole('feed', { name: 'filter:media', exact: true });
    await holdStill(column);
    const image = column.locator('article .post-media img').first();
    await image.waitFor();
    const id = await column.locator('article', { has: page.locator('.post-media img') }).first().getAttribute('data-id');
    const card = column.locator(`article[data-id="${id}"]`);
    const heightBefore = await card.evaluate((node) => node.getBoundingClientRect().height);
    assert.equal(await card.locator('.post-media img').first().evaluate((node) => node.complete && node.naturalWidth > 0), false, 'the picture is still held');
    release();
    const src = await image.evaluate((node) => node.currentSrc || node.src);
    assert.equal(new URL(src).origin, server.baseUrl);
    assert.match(new URL(src).pathname, /^\/media\//);
    assert.ok((await image.getAttribute('alt')).length > 0);
    await waitFor(() => card.locator('.post-media img').first().evaluate((node) => node.complete && node.naturalWidth > 0), 15_000, 'the image to load');
    assert.equal(await card.evaluate((node) => node.getBoundingClientRect().height), heightBefore, 'the card keeps its height when its picture arrives');
    // Permalinks are checked on real posts in pictures.test.mjs (demo posts have none).
    await context.close();
  });

  test('a column\'s query is edited in place with the search box\'s errors; filters show as chips; bad language codes are refused', async () => {
    const { context, page } = await openDeck({ locale: 'ko-KR' });
    await page.getByRole('searchbox').fill('ARMY');
    await page.getByRole('searchbox').press('Enter');
    const column = page.getByRole('feed', { name: 'ARMY', exact: true });
    await column.waitFor();
    await column.locator('.settings-button').click();
    const settings = column.locator('form.column-settings');
    await settings.locator('input[name="query"]').fill('ARMY "unclosed');
    await settings.locator('button[type="submit"]').click();
    // The server's error, in Korean, with the offending character marked.
    await settings.locator('.settings-error .search-error-position').waitFor();
    assert.match(await settings.locator('.settings-error').textContent(), /따옴표가 닫히지 않았습니다/);
    await settings.locator('input[name="query"]').fill('ARMY');
    await settings.locator('input[name="lang"]').fill('jp');
    await settings.locator('button[type="submit"]').click();
    assert.match(await settings.locator('.settings-error').textContent(), /jp/);
    await settings.locator('input[name="lang"]').fill('ko');
    await settings.locator('input[name="query"]').fill('#ARMY');
    await settings.locator('button[type="submit"]').click();
    const edited = page.getByRole('feed', { name: '#ARMY', exact: true });
    await edited.waitFor();
    assert.equal(await edited.locator('.column-chips .chip').first().textContent(), 'lang:ko');
    await context.close();
  });

  test('several named decks: create, switch, share as a link, deck-wide mutes', async () => {
    const { context, page } = await openDeck();
    await page.getByRole('feed', { name: 'BTS', exact: true }).waitFor();
    page.on('dialog', (dialog) => dialog.accept(dialog.type() === 'prompt' ? 'Second' : undefined));
    await page.locator('.decks-button').click();
    const decks = page.locator('dialog.decks-dialog');
    await decks.getByRole('button', { name: 'New deck' }).click();
    await decks.locator('.decks-item.current .decks-open').filter({ hasText: 'Second' }).waitFor();
    await page.keyboard.press('Escape');
    assert.equal(await page.getByRole('feed').count(), 0);
    await page.getByRole('searchbox').fill('#ARMY');
    await page.getByRole('searchbox').press('Enter');
    await page.getByRole('feed', { name: '#ARMY', exact: true }).waitFor();
    // Back to the first deck, then forward again: each keeps its columns.
    await page.locator('.decks-button').click();
    await decks.locator('.decks-open').first().click();
    await page.getByRole('feed', { name: 'BTS', exact: true }).waitFor();
    assert.equal(await page.getByRole('feed', { name: '#ARMY', exact: true }).count(), 0);
    await decks.locator('.decks-open').filter({ hasText: 'Second' }).click();
    await page.getByRole('feed', { name: '#ARMY', exact: true }).waitFor();
    // Deck-wide mutes reach every column.
    await decks.locator('textarea.decks-mutes').fill('army');
    await decks.getByRole('button', { name: 'Apply' }).click();
    await page.keyboard.press('Escape');
    const link = await page.evaluate(() => JSON.parse(localStorage.getItem('deck.library')));
    assert.deepEqual(link.decks.find((deck) => deck.name === 'Second').mutes, ['army']);
    // A share link opens the deck in another browser.
    await page.locator('.decks-button').click();
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.baseUrl });
    await decks.getByRole('button', { name: 'Copy share link' }).click();
    const shared = await waitFor(() => page.evaluate(() => navigator.clipboard.readText()), 5_000, 'the share link');
    const other = await openDeck();
    await other.page.goto(shared);
    await other.page.getByRole('feed', { name: '#ARMY', exact: true }).waitFor();
    // A browser that already keeps the most decks it may is told so, and keeps the decks it has.
    await other.page.evaluate(() => {
      const library = JSON.parse(localStorage.getItem('deck.library'));
      while (library.decks.length < 20) library.decks.push({ ...library.decks[0], id: `full${library.decks.length}`, name: `Deck ${library.decks.length + 1}` });
      localStorage.setItem('deck.library', JSON.stringify(library));
    });
    await other.page.goto(`${server.baseUrl}/`);
    await other.page.getByRole('feed').first().waitFor();
    await other.page.goto(shared);
    await other.page.locator('dialog.decks-dialog[open] .decks-status').filter({ hasText: 'at most 20 decks' }).waitFor();
    assert.equal((await other.page.evaluate(() => JSON.parse(localStorage.getItem('deck.library')))).decks.length, 20);
    await other.context.close();
    await context.close();
  });

  test('on a phone, a column switcher names every column and follows swipes', async () => {
    const { context, page } = await openDeck({ viewport: { width: 390, height: 800 } });
    await page.getByRole('feed', { name: 'BTS', exact: true }).waitFor();
    const tabs = page.locator('.column-switcher .switcher-tab');
    await tabs.first().waitFor();
    assert.equal(await tabs.count(), await page.getByRole('feed').count());
    await tabs.nth(1).click();
    const deck = page.locator('#deck');
    await waitFor(async () => (await deck.evaluate((node) => node.scrollLeft)) > 300, 5_000, 'the second column in view');
    await waitFor(async () => (await tabs.nth(1).getAttribute('aria-current')) === 'true', 5_000, 'the tab to follow');
    await deck.evaluate((node) => node.scrollTo({ left: 0 }));
    await waitFor(async () => (await tabs.nth(0).getAttribute('aria-current')) === 'true', 5_000, 'the tab to follow a swipe back');
    await context.close();
  });

  test('while the reader is scrolled down, new posts wait behind "N new posts" and nothing moves', async () => {
    const { context, page } = await openDeck();
    const bts = page.getByRole('feed', { name: /BTS/ });
    await bts.locator('article').nth(5).waitFor();
    const body = bts.locator('.column-body');
    await body.evaluate((node) => (node.scrollTop = 400));
    // The first card fully in view, and where it is.
    const anchor = await body.evaluate((node) => {
      const top = node.getBoundingClientRect().top;
      const cards = [...node.querySelectorAll('article')].map((card) => ({ id: card.dataset.id, top: card.getBoundingClientRect().top - top }));
      return cards.filter((card) => card.top >= 0).sort((a, b) => a.top - b.top)[0];
    });
    const button = bts.locator('.new-posts');
    await button.waitFor({ state: 'visible', timeout: 30_000 });
    assert.match(await button.textContent(), /new post/);
    const after = await body.evaluate((node, id) => {
      const card = node.querySelector(`article[data-id="${CSS.escape(id)}"]`);
      return card ? card.getBoundingClientRect().top - node.getBoundingClientRect().top : null;
    }, anchor.id);
    assert.ok(after !== null && Math.abs(after - anchor.top) < 2, `the card moved from ${anchor.top} to ${after}`);
    await button.click();
    assert.equal(await body.evaluate((node) => node.scrollTop), 0);
    // The pointer leaves the column, so posts flow again instead of waiting behind the button.
    await page.mouse.move(1, 1);
    await waitFor(async () => (await button.isHidden()) || Number(await bts.getAttribute('data-pending')) < 5, 5_000, 'the buffer to empty');
    await context.close();
  });

  test('a reload keeps the deck, and the language switch to Korean sticks', async () => {
    const { context, page } = await openDeck();
    const box = page.getByRole('searchbox');
    await box.fill('#BTS');
    await box.press('Enter');
    await page.getByRole('feed', { name: '#BTS', exact: true }).waitFor();
    await page.reload();
    await page.getByRole('feed', { name: '#BTS', exact: true }).waitFor();
    await page.getByRole('feed', { name: /BTS/ }).first().waitFor();

    await page.locator('.lang-button').click();
    await page.getByRole('feed', { name: /트렌드/ }).waitFor();
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'ko');
    await page.reload();
    await page.getByRole('feed', { name: /트렌드/ }).waitFor();
    await page.getByRole('feed', { name: '#BTS', exact: true }).waitFor();
    await context.close();
  });

  test('a Korean browser starts in Korean', async () => {
    const { context, page } = await openDeck({ locale: 'ko-KR' });
    await page.getByRole('feed', { name: /트렌드/ }).waitFor();
    await page.getByRole('feed', { name: /BTS/ }).waitFor();
    await context.close();
  });

  test('sign up, verify from the mail, log in, and find the deck restored in another browser', async () => {
    const email = `fan${Date.now()}@example.com`;
    const password = 'purple-ocean-7-seven';
    const { context, page } = await openDeck();
    const mail = await signUp(page, server.dataDir, email, password);
    const token = tokenFromMail(mail, 'verify');
    assert.ok(token, 'the mail holds a #/verify?token= link');

    // Opening the link verifies nothing (a mail scanner opens links too): the page asks
    // for the password chosen at sign-up.
    await page.goto(`${server.baseUrl}/#/verify?token=${encodeURIComponent(token)}`);
    await page.getByText('Enter the password you chose').waitFor();
    const early = await fetch(`${server.baseUrl}/api/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email, password }),
    });
    assert.equal(early.status, 401, 'not verified by opening the link');
    await page.getByRole('dialog').getByLabel('Password').fill(password);
    await page.getByRole('dialog').getByRole('button', { name: 'Confirm e-mail' }).click();
    await page.getByText('Your e-mail is confirmed').waitFor();
    await page.getByLabel('E-mail').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('dialog').getByRole('button', { name: 'Log in' }).click();
    await waitFor(async () => (await page.locator('#app').getAttribute('data-signed-in')) === 'true', 10_000, 'sign-in');

    // The refresh token is an HttpOnly, Secure, SameSite=Strict cookie on /api/auth that
    // no script sees; only the short-lived access token is in localStorage.
    const cookies = (await context.cookies()).filter((cookie) => cookie.name === 'deck_refresh');
    assert.equal(cookies.length, 1, 'the browser kept the refresh cookie');
    assert.deepEqual(
      [cookies[0].httpOnly, cookies[0].secure, cookies[0].sameSite, cookies[0].path],
      [true, true, 'Strict', '/api/auth'],
    );
    assert.ok(!(await page.evaluate(() => document.cookie)).includes('deck_refresh'));
    const stored = await page.evaluate(() => localStorage.getItem('deck.session') ?? '');
    assert.ok(stored.includes('access') && !stored.includes('refresh'), stored);
    // Two tabs refreshing at the same moment both stay signed in.
    const second = await context.newPage();
    await second.goto(server.baseUrl);
    const refresh = (tab) =>
      tab.evaluate(async () => (await fetch('/api/auth/refresh', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' })).status);
    assert.deepEqual(await Promise.all([refresh(page), refresh(second)]), [200, 200]);
    assert.equal(await refresh(second), 200, 'the session survived');
    await second.close();

    const box = page.getByRole('searchbox');
    await box.fill('#ARMY');
    await box.press('Enter');
    await page.getByRole('feed', { name: '#ARMY', exact: true }).waitFor();
    // A second named deck with a deck-wide mute; then back to the first.
    page.on('dialog', (dialog) => dialog.accept(dialog.type() === 'prompt' ? 'Comeback' : undefined));
    await page.locator('.decks-button').click();
    const decks = page.locator('dialog.decks-dialog');
    await decks.getByRole('button', { name: 'New deck' }).click();
    await decks.locator('.decks-item.current .decks-open').filter({ hasText: 'Comeback' }).waitFor();
    await decks.locator('textarea.decks-mutes').fill('spoiler');
    await decks.getByRole('button', { name: 'Apply' }).click();
    await decks.locator('.decks-open').first().click();
    await page.getByRole('feed', { name: '#ARMY', exact: true }).waitFor();
    await page.keyboard.press('Escape');
    // The decks reach the server shortly after a change: the open one, and the library with its mutes.
    await waitFor(async () => {
      const token = await page.evaluate(() => JSON.parse(localStorage.getItem('deck.session') ?? 'null')?.access);
      const response = await fetch(`${server.baseUrl}/api/me/deck`, { headers: { Authorization: `Bearer ${token}` } });
      const deck = await response.json();
      const comeback = deck.library?.decks?.find((named) => named.name === 'Comeback');
      return deck.columns?.some((column) => column.query === '#ARMY') && comeback?.mutes?.includes('spoiler');
    }, 10_000, 'the decks saved on the server');
    await context.close();

    const other = await openDeck();
    assert.equal(await other.page.getByRole('feed', { name: '#ARMY', exact: true }).count(), 0);
    await logIn(other.page, email, password);
    await other.page.getByRole('feed', { name: '#ARMY', exact: true }).waitFor();
    // The other named deck came too, with its mutes.
    await other.page.keyboard.press('Escape');
    await other.page.locator('.decks-button').click();
    const otherDecks = other.page.locator('dialog.decks-dialog');
    await otherDecks.locator('.decks-open').filter({ hasText: 'Comeback' }).click();
    await otherDecks.locator('.decks-item.current .decks-open').filter({ hasText: 'Comeback' }).waitFor();
    assert.equal(await otherDecks.locator('textarea.decks-mutes').inputValue(), 'spoiler');
    await other.context.close();
  });

  test('screenshots of the deck in both themes and both languages', async (t) => {
    await mkdir(screenshotsDir, { recursive: true });
    for (const lang of ['en', 'ko']) {
      for (const theme of ['light', 'dark']) {
        const { context, page } = await openDeck({ locale: lang === 'ko' ? 'ko-KR' : 'en-US', colorScheme: theme });
        const bts = page.getByRole('feed', { name: /BTS/ });
        await bts.locator('article').nth(4).waitFor();
        await page.locator('.trends-hashtags a').first().waitFor();
        await page.getByRole('searchbox').fill(lang === 'ko' ? '방탄소년단' : '#BTS');
        await page.getByRole('searchbox').press('Enter');
        await page.getByRole('feed').nth(2).locator('article').first().waitFor();
        await page.evaluate(() => document.activeElement instanceof HTMLElement && document.activeElement.blur());
        // The pictures in view (avatars, photos) are in the shot, not their empty
        // boxes: live posts keep coming, so the shot is taken again (a few times
        // at most) until every picture in view was loaded before and after it.
        // (Loaded is not yet painted: the cards' images decode off the main
        // thread, so each one in view is also decoded before the shot.)
        const picturesInView = () =>
          page.evaluate(async () => {
            const inView = [...document.querySelectorAll('img')].filter((img) => {
              const box = img.getBoundingClientRect();
              return box.bottom > 0 && box.top < innerHeight && box.right > 0 && box.left < innerWidth;
            });
            if (!inView.every((img) => img.complete && img.naturalWidth > 0)) return false;
            await Promise.all(inView.map((img) => img.decode().catch(() => undefined)));
            await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
            return true;
          });
        let whole = false;
        for (let attempt = 0; attempt < 5 && !whole; attempt++) {
          await waitFor(picturesInView, 15_000, 'the pictures in view to load');
          await page.screenshot({ path: join(screenshotsDir, `deck-${theme}-${lang}.png`) });
          whole = await picturesInView();
        }
        // Kept, but said: a picture that came into view while the shot was taken may be an empty box in it.
        if (!whole) t.diagnostic(`deck-${theme}-${lang}.png: a picture was still loading after 5 shots; look at it before committing it`);
        await context.close();
      }
    }
  });
});
