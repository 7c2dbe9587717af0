// @vitest-environment jsdom
// A card as the reader sees it (issue 16): avatars and pictures only from
// Deck's own origin, alt text on every image, the space of a picture reserved,
// the sensitive blur and its reveal, the media preview size, play badges that
// link out, the time as a link to the post, and the retweet line.

import { describe, expect, it } from 'vitest';
import type { Media } from '../bindings/Media';
import type { Post } from '../bindings/Post';
import { toDisplayItems, type DisplayItem } from '../logic/collapse';
import { makePost, makeRetweet } from '../logic/testPosts';
import { renderCard, type CardHandlers } from './PostCard';

const MINUTE = 60_000;

function handlers(opened: Post[] = []): CardHandlers {
  return { hashtag() {}, mention() {}, cashtag() {}, user() {}, open: (post) => opened.push(post) };
}

function card(post: Post, mediaSize: 'off' | 'small' | 'large' = 'large', opened: Post[] = []): HTMLElement {
  const [item] = toDisplayItems([post], false);
  const article = renderCard(item, handlers(opened), { mediaSize });
  document.body.replaceChildren(article);
  return article;
}

function photo(n: number, overrides: Partial<Media> = {}): Media {
  return { kind: 'photo', url: `/media/full-${n}`, preview_url: `/media/small-${n}`, width: 1200, height: 800, alt: null, ...overrides };
}

describe('pictures', () => {
  it('shows the avatar from Deck\'s origin, and an initial instead of a picture from anywhere else', () => {
    const own = card(makePost('1', Date.now(), { author: { id: 'a', handle: 'nong', name: 'Nong', avatar_url: '/media/avatar-a' } }));
    const img = own.querySelector<HTMLImageElement>('img.avatar');
    expect(img?.getAttribute('src')).toBe('/media/avatar-a');
    expect(img?.alt).toContain('nong');
    const outside = card(makePost('2', Date.now(), { author: { id: 'b', handle: 'mochi', name: 'Mochi', avatar_url: 'https://pbs.twimg.com/profile_images/1/x.jpg' } }));
    expect(outside.querySelector('img')).toBeNull();
    expect(outside.querySelector('.avatar-initial')?.textContent).toBe('M');
  });

  it('draws a grid of up to four photos, each with alt text, lazy, with its size known before it loads', () => {
    const media = [photo(1, { alt: 'Jin on stage' }), photo(2), photo(3), photo(4), photo(5)];
    const article = card(makePost('1', Date.now(), { has_media: true, media }));
    const grid = article.querySelector<HTMLElement>('.post-media');
    expect(grid?.classList).toContain('post-media-n4');
    expect(grid?.style.aspectRatio).not.toBe('');
    const images = [...article.querySelectorAll<HTMLImageElement>('.post-media img')];
    expect(images.map((img) => img.getAttribute('src'))).toEqual(['/media/small-1', '/media/small-2', '/media/small-3', '/media/small-4']);
    expect(images.map((img) => img.alt)).toEqual(['Jin on stage', 'Image 2 of 5 from @user1', 'Image 3 of 5 from @user1', 'Image 4 of 5 from @user1']);
    expect(images.every((img) => img.loading === 'lazy' && img.width === 1200 && img.height === 800)).toBe(true);
    // The author's own alt text is marked as such; the fallback is not.
    expect(article.querySelectorAll('.alt-badge')).toHaveLength(1);
    // With its pictures drawn, the card does not also say "media".
    expect(article.querySelector('.badge-media')).toBeNull();
  });

  it('keeps the box of a picture that fails to load, with its description in it, and falls back to the initial for an avatar', () => {
    const post = makePost('1', Date.now(), {
      author: { id: 'a', handle: 'nong', name: 'Nong', avatar_url: '/media/avatar-a' },
      has_media: true,
      media: [photo(1, { alt: 'Jin on stage' })],
      card: { url: 'https://news.example/a', title: 'Comeback', description: '', image_url: '/media/card-1' },
    });
    const article = card(post);
    for (const img of article.querySelectorAll('img')) img.dispatchEvent(new Event('error'));
    expect(article.querySelector('img')).toBeNull();
    expect(article.querySelector('.avatar-initial')?.textContent).toBe('N');
    expect(article.querySelector('.post-media .media-missing')?.textContent).toBe('Jin on stage');
    expect(article.querySelector('.link-card .link-card-image-missing')).not.toBeNull();
  });

  it('never puts a picture from outside Deck\'s origin in the page', () => {
    const article = card(makePost('1', Date.now(), { has_media: true, media: [photo(1, { url: 'https://pbs.twimg.com/media/a.jpg', preview_url: 'https://pbs.twimg.com/media/a.jpg?name=small' })] }));
    expect(article.querySelector('img')).toBeNull();
    expect(article.querySelector('.post-media')).toBeNull();
  });

  it('shows a video or GIF as its poster with a play badge linking out in a new tab', () => {
    const video: Media = { kind: 'video', url: 'https://video.twimg.com/v.mp4', preview_url: '/media/poster-v', width: 1280, height: 720, alt: null };
    const gif: Media = { kind: 'gif', url: 'https://video.twimg.com/g.mp4', preview_url: '/media/poster-g', width: 480, height: 480, alt: null };
    const article = card(makePost('1', Date.now(), { has_media: true, media: [video, gif] }));
    const links = [...article.querySelectorAll<HTMLAnchorElement>('.post-media a.media-item')];
    expect(links.map((link) => link.href)).toEqual(['https://video.twimg.com/v.mp4', 'https://video.twimg.com/g.mp4']);
    expect(links.every((link) => link.target === '_blank' && link.rel.includes('noopener'))).toBe(true);
    expect(links.map((link) => link.querySelector('.play-badge')?.textContent)).toEqual(['▶', 'GIF']);
    expect(links.map((link) => link.getAttribute('aria-label'))).toEqual(['Play video (new tab): Video 1 of 2 from @user1', 'Play GIF (new tab): GIF 2 of 2 from @user1']);
    expect([...article.querySelectorAll('img:not(.avatar)')].map((img) => img.getAttribute('src'))).toEqual(['/media/poster-v', '/media/poster-g']);
  });

  it('blurs sensitive media under a button, and a click reveals it without opening the post', () => {
    const opened: Post[] = [];
    const article = card(makePost('1', Date.now(), { has_media: true, sensitive: true, media: [photo(1)] }), 'large', opened);
    const wrap = article.querySelector<HTMLElement>('.sensitive');
    expect(wrap?.querySelector('.post-media img')).not.toBeNull();
    expect(wrap?.classList).not.toContain('revealed');
    const reveal = wrap?.querySelector<HTMLButtonElement>('button.sensitive-reveal');
    expect(reveal?.textContent).toBe('Sensitive media — show');
    reveal?.click();
    expect(wrap?.classList).toContain('revealed');
    expect(article.querySelector('button.sensitive-reveal')).toBeNull();
    expect(opened).toHaveLength(0);
    // A retweet the source marked carries an original it did not (as X sends it): still blurred.
    const original = makePost('3', Date.now(), { has_media: true, media: [photo(1)] });
    const retweet = { ...makeRetweet('4', Date.now(), 'loona', original), sensitive: true };
    expect(card(retweet).querySelector('.sensitive .post-media')).not.toBeNull();
    // Media the source did not mark is not blurred.
    expect(card(makePost('2', Date.now(), { has_media: true, media: [photo(1)] })).querySelector('.sensitive')).toBeNull();
  });

  it('follows the media preview size: large, small thumbnails, or none with a "media" badge', () => {
    const post = makePost('1', Date.now(), { has_media: true, media: [photo(1), photo(2)] });
    expect(card(post, 'large').querySelector('.post-media')?.classList).toContain('post-media-large');
    expect(card(post, 'small').querySelector('.post-media')?.classList).toContain('post-media-small');
    const off = card(post, 'off');
    expect(off.querySelector('.post-media')).toBeNull();
    expect(off.querySelector('.badge-media')).not.toBeNull();
  });

  it('draws a link card; its picture only from Deck\'s origin, its description only at the large size', () => {
    const post = makePost('1', Date.now(), { card: { url: 'https://news.example/a', title: 'Comeback', description: 'The new album', image_url: '/media/card-1' } });
    const large = card(post, 'large').querySelector<HTMLAnchorElement>('a.link-card');
    expect(large?.href).toBe('https://news.example/a');
    expect(large?.rel).toContain('noopener');
    expect(large?.querySelector('img')?.getAttribute('src')).toBe('/media/card-1');
    expect(large?.querySelector('.link-card-host')?.textContent).toBe('news.example');
    expect(large?.querySelector('.link-card-description')?.textContent).toBe('The new album');
    expect(card(post, 'small').querySelector('.link-card-description')).toBeNull();
    const outside = makePost('2', Date.now(), { card: { url: 'https://news.example/b', title: 'B', description: '', image_url: 'https://cdn.example/b.jpg' } });
    expect(card(outside).querySelector('.link-card img')).toBeNull();
    // A card that does not link to a web page is not drawn.
    expect(card(makePost('3', Date.now(), { card: { url: 'javascript:alert(1)', title: 'x', description: '', image_url: null } })).querySelector('.link-card')).toBeNull();
  });
});

describe('into the post', () => {
  it('makes the time a link to the post on its network, in a new tab', () => {
    const article = card(makePost('1440717092546756616', Date.now() - 3 * MINUTE, { source: 'x', permalink: 'https://x.com/nong/status/1440717092546756616' }));
    const link = article.querySelector<HTMLAnchorElement>('a.post-permalink');
    expect(link?.href).toBe('https://x.com/nong/status/1440717092546756616');
    expect(link?.target).toBe('_blank');
    expect(link?.rel.split(' ')).toContain('noopener');
    expect(link?.querySelector('time')?.textContent).toBe('3m');
  });

  it('draws no link for a post without a permalink, or with one that is not a web address', () => {
    expect(card(makePost('1', Date.now())).querySelector('a.post-permalink')).toBeNull();
    expect(card(makePost('2', Date.now(), { permalink: 'javascript:alert(1)' })).querySelector('a.post-permalink')).toBeNull();
  });

  it('opens the post on a click on the card, but not on a click on a link', () => {
    const opened: Post[] = [];
    const article = card(makePost('1', Date.now(), { permalink: 'https://x.com/u/status/1' }), 'large', opened);
    article.querySelector<HTMLElement>('.post-text')?.click();
    expect(opened.map((post) => post.id)).toEqual(['1']);
    article.querySelector<HTMLAnchorElement>('a.post-permalink')?.dispatchEvent(new MouseEvent('click', { bubbles: true, cancelable: true }));
    expect(opened).toHaveLength(1);
  });
});

describe('the retweet line', () => {
  const now = Date.now();
  const original = makePost('100', now - 11 * MINUTE, { author: { id: 'o', handle: 'bts_bighit', name: 'BTS', avatar_url: null } });

  it('says who retweeted and when ("⟲ Nong retweeted · 2m"), with the original\'s age secondary', () => {
    const retweet = makeRetweet('200', now - 2 * MINUTE, 'nong', original);
    retweet.author.name = 'Nong';
    const article = card(retweet);
    const line = article.querySelector('.post-retweeted-by');
    expect(line?.textContent).toBe('⟲ Nong retweeted · 2m');
    expect(line?.querySelector('time.retweet-time')?.getAttribute('datetime')).toBe(retweet.created_at);
    const originalTime = article.querySelector('.post-author time');
    expect(originalTime?.classList).toContain('post-time-secondary');
    expect(originalTime?.textContent).toBe('11m');
  });

  it('says the number of retweeters once when retweets fold into one card', () => {
    const posts = [makeRetweet('203', now - MINUTE, 'c', original), makeRetweet('202', now - 2 * MINUTE, 'b', original), makeRetweet('201', now - 3 * MINUTE, 'a', original)];
    const items: DisplayItem[] = toDisplayItems(posts, true);
    expect(items).toHaveLength(1);
    const article = renderCard(items[0], handlers());
    const line = article.querySelector('.post-retweeted-by')?.textContent ?? '';
    expect(line).toBe('⟲ c and 2 others retweeted · 1m');
    expect(line.match(/\d+ others?/g)).toHaveLength(1);
  });
});
