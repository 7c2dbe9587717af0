// Deep-link routes as data: hash → column query, and query → shareable hash.

import { describe, expect, it } from 'vitest';
import { parseRoute, routeForQuery, sameQuery } from './routes';
import { autoTitle, displayTitle } from './query';

describe('deep links', () => {
  it('parses every route', () => {
    const cases: [string, ReturnType<typeof parseRoute>][] = [
      ['#/tag/kpop', { kind: 'column', query: '#kpop' }],
      ['#/tag/%23%EB%B0%A9%ED%83%84', { kind: 'column', query: '#방탄' }],
      ['#/user/BTS_twt', { kind: 'column', query: 'from:BTS_twt' }],
      ['#/user/@BTS_twt', { kind: 'column', query: 'from:BTS_twt' }],
      ['#/mention/jin', { kind: 'column', query: '@jin' }],
      ['#/search?q=lang%3Ako%20ARMY', { kind: 'column', query: 'lang:ko ARMY' }],
      ['#/search?q=', { kind: 'none' }],
      ['#/tag/', { kind: 'none' }],
      ['#/tag/%E0%A4%A', { kind: 'column', query: '#%E0%A4%A' }],
      ['#/verify?token=abc', { kind: 'verify', token: 'abc' }],
      ['#/login', { kind: 'login' }],
      ['', { kind: 'none' }],
      ['#/elsewhere', { kind: 'none' }],
    ];
    for (const [hash, route] of cases) expect(parseRoute(hash), hash).toEqual(route);
  });

  it('gives each query a link that parses back to it', () => {
    for (const query of ['#kpop', '#방탄소년단', 'from:jin', '@jin', 'lang:ko ARMY', '"exact phrase" -spoiler', 'BTS']) {
      const route = parseRoute(routeForQuery(query));
      expect(route).toEqual({ kind: 'column', query });
    }
    expect(routeForQuery('#kpop')).toBe('#/tag/kpop');
    expect(routeForQuery('from:jin')).toBe('#/user/jin');
  });

  it('treats case and spacing as the same query', () => {
    expect(sameQuery('#KPOP', ' #kpop ')).toBe(true);
    expect(sameQuery('lang:ko  ARMY', 'lang:ko army')).toBe(true);
    expect(sameQuery('from:jin', '@jin')).toBe(false);
  });

  it('titles posts by and mentions of an account distinctly', () => {
    const strings = { postsBy: (h: string) => `Posts by @${h}`, mentionsOf: (h: string) => `Mentions of @${h}`, trends: 'Trends' };
    expect(autoTitle('from:jin', strings)).toBe('Posts by @jin');
    expect(autoTitle('@jin', strings)).toBe('Mentions of @jin');
    expect(autoTitle('#kpop', strings)).toBe('#kpop');
    expect(displayTitle({ title: 'from:jin', query: 'from:jin', filters: {} }, strings)).toBe('Posts by @jin');
    expect(displayTitle({ title: 'Jin!', query: 'from:jin', filters: {} }, strings)).toBe('Jin!');
    expect(displayTitle({ title: '', query: '', filters: { kind: 'trends' } }, strings)).toBe('Trends');
  });
});

import { errorText, knownLanguage } from './errors';

describe('server errors in the reader language', () => {
  it('translates codes and the parser messages, and keeps English as sent', () => {
    expect(errorText('bad_query', 'this quote is never closed (at character 0)', 'ko')).toBe('따옴표가 닫히지 않았습니다');
    expect(errorText('bad_query', 'min_faves: needs a whole number (at character 4)', 'ko')).toBe('min_faves: 뒤에는 정수가 필요합니다');
    expect(errorText('rate_limited', 'too many requests', 'ko')).toBe('요청이 너무 많습니다. 잠시 후 다시 시도합니다');
    expect(errorText('bad_query', 'this quote is never closed (at character 0)', 'en')).toBe('this quote is never closed (at character 0)');
    expect(errorText('something_new', 'Something new', 'ko')).toBe('Something new');
  });

  it('knows language codes', () => {
    expect(knownLanguage('ja')).toBe(true);
    expect(knownLanguage('KO')).toBe(true);
    expect(knownLanguage('jp')).toBe(false);
  });
});
