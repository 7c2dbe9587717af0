// Browser tests of pictures and permalinks (issue 16) against `deck serve`
// replaying the real #kpop X API v2 recording from ../shared/testdata: real
// posts with photos, a video, a GIF, sensitive media and retweets. The
// recording's pictures live on X's CDN, which this machine cannot reach, so
// these tests check what the page asks for (Deck's own `/media/…`) and how it
// draws it; the demo's locally drawn pictures are loaded in deck.test.mjs.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { launchBrowser, startServer, testdataDir, waitFor } from './harness.mjs';

const RECORDING = join(testdataDir, 'tweets', 'v2', 'twarc-csv-kpop.jsonl');

let server;
let browser;
/** The stored posts with media, newest first, as the API gives them. */
let posts = [];

/** The post a card shows for `post`: a retweet's original when known. */
const shown = (post) => (post.kind === 'retweet' && post.retweeted ? post.retweeted : post);
/** Whether a card blurs its pictures: X marks the retweet, not always the original it carries. */
const sensitive = (post) => (post.sensitive || shown(post).sensitive) && shown(post).media.length > 0;

before(async () => {
  server = await startServer(['--source', `replay:${RECORDING}`]);
  browser = await launchBrowser();
  // The replay runs as fast as it can; readiness says when its source has finished.
  await waitFor(async () => {
    const body = await (await fetch(`${server.baseUrl}/readyz`)).json();
    return body.stages.some((stage) => stage.name.startsWith('source replay:') && stage.state === 'finished');
  }, 60_000, 'the replay to finish');
  const response = await fetch(`${server.baseUrl}/api/timeline?q=${encodeURIComponent('filter:media')}&limit=200`);
  posts = (await response.json()).posts;
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function openAt(hash) {
  const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error('page error:', error));
  // X's CDN is out of reach here, so the proxy would answer 404 and each card
  // would put the picture's description in its place: the requests are held
  // instead, so the images stay in the page as the reader's browser asks for them.
  await page.route('**/media/**', () => {});
  await page.goto(`${server.baseUrl}/${hash}`);
  return { context, page };
}

/**
 * Scrolls a column from top to bottom, reading every card drawn on the way
 * (the list draws only what is near the view): each card's permalink by id,
 * and every image by its address.
 */
async function readThrough(column) {
  const cards = new Map();
  const images = new Map();
  const body = column.locator('.column-body');
  for (let step = 0; step < 200; step++) {
    const seen = await column.evaluate((feed) => ({
      cards: [...feed.querySelectorAll('article')].map((node) => [node.dataset.id, node.querySelector('.post-author a.post-permalink')?.href ?? null]),
      images: [...feed.querySelectorAll('article img')].map((node) => [node.src, { alt: node.alt, kind: node.closest('.post-media') ? 'media' : node.closest('.link-card') ? 'card' : 'avatar' }]),
    }));
    for (const [id, permalink] of seen.cards) cards.set(id, permalink);
    for (const [src, image] of seen.images) images.set(src, image);
    const moved = await body.evaluate((node) => {
      const before = node.scrollTop;
      node.scrollTop = before + node.clientHeight * 0.8;
      return node.scrollTop !== before;
    });
    if (!moved) break;
    await column.page().evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
  }
  return { cards, images };
}

describe('pictures and permalinks of real X posts', () => {
  test('the recording has what these tests draw', () => {
    assert.ok(posts.length > 50, `${posts.length} posts with media stored`);
    assert.ok(posts.some(sensitive), 'a post with sensitive media');
    assert.ok(posts.some((post) => shown(post).media.some((item) => item.kind !== 'photo')), 'a video or GIF');
    assert.ok(posts.some((post) => post.kind === 'retweet'), 'a retweet');
  });

  test('a media column draws pictures from Deck\'s own origin with alt text, and every time links to its /status/ page', async () => {
    const { context, page } = await openAt('#/search?q=filter%3Amedia');
    const column = page.getByRole('feed', { name: 'filter:media', exact: true });
    await column.locator('article').first().waitFor();
    const { cards, images } = await readThrough(column);
    // 79 posts with media, retweets of one original folded into one card.
    assert.ok(cards.size >= 15, `${cards.size} cards read`);
    for (const [id, permalink] of cards) assert.match(permalink ?? '', new RegExp(`^https://x\\.com/[A-Za-z0-9_]+/status/${id}$`), `card ${id}`);
    assert.ok([...images.values()].some((image) => image.kind === 'media'), 'photo grids drawn');
    for (const [src, image] of images) {
      assert.equal(new URL(src).origin, server.baseUrl, src);
      assert.match(new URL(src).pathname, /^\/media\//);
      assert.ok(image.alt.trim().length > 0, `alt text on ${src}`);
    }
    const link = column.locator('article a.post-permalink').first();
    assert.equal(await link.getAttribute('target'), '_blank');
    assert.match(await link.getAttribute('rel'), /noopener/);
    await context.close();
  });

  test('sensitive media is blurred until the reader asks, and a click on the button shows it', async () => {
    const post = posts.find(sensitive);
    const { context, page } = await openAt(`#/user/${encodeURIComponent(post.author.handle)}`);
    const column = page.getByRole('feed', { name: `Posts by @${post.author.handle}`, exact: true });
    const card = column.locator(`article[data-id="${shown(post).id}"]`);
    const wrap = card.locator('.sensitive');
    await wrap.waitFor();
    const blurred = () => wrap.locator('.post-media img').first().evaluate((node) => getComputedStyle(node).filter);
    assert.match(await blurred(), /blur/);
    await card.locator('button.sensitive-reveal').click();
    assert.equal(await card.locator('button.sensitive-reveal').count(), 0);
    assert.doesNotMatch(await blurred(), /blur/);
    // The reveal is not a click on the post: no detail view opened.
    assert.equal(await page.locator('dialog.post-detail[open]').count(), 0);
    await context.close();
  });

  test('a video or GIF shows its poster with a play badge that opens the clip in a new tab', async () => {
    const post = posts.find((p) => shown(p).media.some((item) => item.kind !== 'photo'));
    const clip = shown(post).media.find((item) => item.kind !== 'photo');
    const { context, page } = await openAt(`#/user/${encodeURIComponent(post.author.handle)}`);
    const column = page.getByRole('feed', { name: `Posts by @${post.author.handle}`, exact: true });
    const link = column.locator(`article[data-id="${shown(post).id}"] a.media-${clip.kind}`).first();
    await link.waitFor();
    assert.equal(await link.locator('.play-badge').textContent(), clip.kind === 'gif' ? 'GIF' : '▶');
    assert.match(await link.getAttribute('href'), /^https:\/\//);
    assert.equal(await link.getAttribute('target'), '_blank');
    assert.match(await link.getAttribute('aria-label'), /^Play (video|GIF) \(new tab\)/);
    await context.close();
  });

  test('a retweet says who retweeted it and when, and the media preview size setting turns pictures off', async () => {
    const post = posts.find((p) => p.kind === 'retweet' && shown(p).media.some((item) => item.kind === 'photo'));
    const { context, page } = await openAt(`#/user/${encodeURIComponent(post.author.handle)}`);
    const column = page.getByRole('feed', { name: `Posts by @${post.author.handle}`, exact: true });
    const card = column.locator(`article[data-id="${shown(post).id}"]`);
    const line = card.locator('.post-retweeted-by');
    await line.waitFor();
    assert.match(await line.textContent(), /^⟲ .+ retweeted · /);
    assert.equal(await line.locator('time.retweet-time').getAttribute('datetime'), post.created_at);
    assert.match(await card.locator('.post-author time').getAttribute('class'), /post-time-secondary/);
    await card.locator('.post-media img').first().waitFor();

    await column.locator('.settings-button').click();
    const settings = column.locator('form.column-settings');
    await settings.locator('select[name="media_size"]').selectOption('off');
    await settings.locator('button[type="submit"]').click();
    await waitFor(async () => (await card.count()) === 1 && (await column.locator('article .post-media').count()) === 0, 10_000, 'the pictures to go');
    assert.equal(await card.locator('.badge-media').count(), 1, 'the card says it has media');

    // The setting is kept with the column.
    await page.reload();
    await card.waitFor();
    assert.equal(await column.locator('article .post-media').count(), 0);
    await context.close();
  });
});
