// Deep links: `#/tag/NAME`, `#/user/NAME`, `#/search?q=QUERY` (public names,
// CONTRACT.md "Web page") as column queries and back, plus the mailed-link
// routes of the account dialog. Pure, so it is tested as data.

/** What a location hash asks for. */
export type Route =
  | { kind: 'column'; query: string }
  | { kind: 'verify' | 'reset'; token: string }
  | { kind: 'login' | 'signup' }
  | { kind: 'deck'; data: string }
  | { kind: 'none' };

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** Parses a location hash (`#/tag/kpop`, `#/search?q=…`, …). */
export function parseRoute(hash: string): Route {
  const raw = hash.replace(/^#/, '');
  const question = raw.indexOf('?');
  const path = question < 0 ? raw : raw.slice(0, question);
  const params = new URLSearchParams(question < 0 ? '' : raw.slice(question + 1));
  const segments = path.split('/').filter(Boolean);
  const head = segments[0] ?? '';
  const rest = decode(segments.slice(1).join('/')).trim();
  switch (head) {
    case 'tag': {
      const tag = rest.replace(/^[#＃]+/, '');
      return tag && !/\s/.test(tag) ? { kind: 'column', query: `#${tag}` } : { kind: 'none' };
    }
    case 'user': {
      const handle = rest.replace(/^@+/, '');
      return handle && !/\s/.test(handle) ? { kind: 'column', query: `from:${handle}` } : { kind: 'none' };
    }
    case 'mention': {
      const handle = rest.replace(/^@+/, '');
      return handle && !/\s/.test(handle) ? { kind: 'column', query: `@${handle}` } : { kind: 'none' };
    }
    case 'cashtag': {
      const tag = rest.replace(/^\$+/, '');
      return tag && !/\s/.test(tag) ? { kind: 'column', query: `$${tag}` } : { kind: 'none' };
    }
    case 'search': {
      const query = (params.get('q') ?? rest).trim();
      return query ? { kind: 'column', query } : { kind: 'none' };
    }
    case 'verify':
    case 'reset': {
      const token = params.get('token') ?? '';
      return token ? { kind: head, token } : { kind: 'none' };
    }
    case 'login':
    case 'signup':
      return { kind: head };
    case 'deck': {
      const data = params.get('d') ?? '';
      return data ? { kind: 'deck', data } : { kind: 'none' };
    }
    default:
      return { kind: 'none' };
  }
}

/** The shareable link (hash) of a column query: the shortest route that gives the same query back. */
export function routeForQuery(query: string): string {
  const trimmed = query.trim();
  let match = /^#([^\s#]+)$/u.exec(trimmed);
  if (match) return `#/tag/${encodeURIComponent(match[1])}`;
  match = /^from:([^\s]+)$/i.exec(trimmed);
  if (match) return `#/user/${encodeURIComponent(match[1])}`;
  match = /^@([^\s@]+)$/.exec(trimmed);
  if (match) return `#/mention/${encodeURIComponent(match[1])}`;
  return `#/search?q=${encodeURIComponent(trimmed)}`;
}

/** A query's identity for "is this column already open": case and spacing do not matter. */
export function sameQuery(a: string, b: string): boolean {
  return normalizeQuery(a) === normalizeQuery(b);
}

/** Lower-cased, single-spaced query text. */
export function normalizeQuery(query: string): string {
  return query.trim().replace(/\s+/g, ' ').toLowerCase();
}
