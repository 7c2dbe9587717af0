// @vitest-environment jsdom
// The DOM of post text is built with textContent only: markup in a post stays text.

import { describe, expect, it } from 'vitest';
import { renderSegments, segmentText } from './linkify';

describe('renderSegments', () => {
  it('builds links and text nodes without injecting HTML', () => {
    const clicked: string[] = [];
    const fragment = renderSegments(document, segmentText('<b>hi</b> #BTS @jin https://bts.example/x'), {
      hashtag: (tag) => clicked.push(`#${tag}`),
      mention: (handle) => clicked.push(`@${handle}`),
      cashtag: () => {},
    });
    const host = document.createElement('div');
    host.append(fragment);
    expect(host.querySelector('b')).toBeNull();
    expect(host.textContent).toBe('<b>hi</b> #BTS @jin https://bts.example/x');
    const links = [...host.querySelectorAll('a')];
    expect(links.map((a) => a.textContent)).toEqual(['#BTS', '@jin', 'https://bts.example/x']);
    expect(links[2].getAttribute('rel')).toContain('noopener');
    links[0].click();
    links[1].click();
    expect(clicked).toEqual(['#BTS', '@jin']);
  });
});
