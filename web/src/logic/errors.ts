// Server errors in the reader's language: the server answers with a code
// (`bad_query`, `rate_limited`, …) and an English message; the code (and, for
// a bad query, the parser's message, which is one of a fixed set) picks the
// text shown. Unknown messages stay as the server wrote them.

import type { Lang } from './time';

const CODES_KO: Record<string, string> = {
  rate_limited: '요청이 너무 많습니다. 잠시 후 다시 시도합니다',
  network: '네트워크 오류: 서버에 연결할 수 없습니다',
  unauthorized: '로그인이 필요합니다',
  forbidden: '권한이 없습니다',
  internal: '서버 내부 오류',
  bad_window: '알 수 없는 기간입니다',
  bad_cursor: '잘못된 위치 정보입니다',
  too_many_columns: '칼럼이 너무 많습니다',
  needs_positive_term: '실시간 칼럼에는 제외(-)가 아닌 검색어가 하나 이상 필요합니다',
  bad_column: '잘못된 칼럼입니다',
  bad_message: '잘못된 요청입니다',
  bad_json: '잘못된 요청입니다',
};

/** The parser's messages (crates/search) and their Korean. */
const QUERY_KO: [RegExp, (match: RegExpExecArray) => string][] = [
  [/^AND needs a search term after it/, () => 'AND 뒤에 검색어가 필요합니다'],
  [/^AND needs a search term before it/, () => 'AND 앞에 검색어가 필요합니다'],
  [/^OR needs a search term after it/, () => 'OR 뒤에 검색어가 필요합니다'],
  [/^OR needs a search term before it/, () => 'OR 앞에 검색어가 필요합니다'],
  [/^a search term is missing at the end/, () => '끝에 검색어가 빠졌습니다'],
  [/^a search term is missing here/, () => '여기에 검색어가 빠졌습니다'],
  [/^lang: needs a language code such as ko or en/, () => 'lang: 뒤에는 ko, en 같은 언어 코드가 필요합니다'],
  [/^the query is empty/, () => '검색어가 비어 있습니다'],
  [/^these parentheses are empty/, () => '괄호 안이 비어 있습니다'],
  [/^this '\(' is never closed/, () => "'(' 가 닫히지 않았습니다"],
  [/^this '\)' has no matching '\('/, () => "')' 에 맞는 '(' 가 없습니다"],
  [/^this quote is never closed/, () => '따옴표가 닫히지 않았습니다'],
  [/^too many nested parentheses/, () => '괄호가 너무 많이 겹쳐 있습니다'],
  [/^the query is too long \(at most (\d+) characters\)/, (m) => `검색어가 너무 깁니다 (최대 ${m[1]}자)`],
  [/^(\w+): needs a date written YYYY-MM-DD/, (m) => `${m[1]}: 뒤에는 YYYY-MM-DD 형식의 날짜가 필요합니다`],
  [/^(\w+): needs a value/, (m) => `${m[1]}: 뒤에 값이 필요합니다`],
  [/^(\w+): needs a whole number/, (m) => `${m[1]}: 뒤에는 정수가 필요합니다`],
  [/^(\w+): needs an account name/, (m) => `${m[1]}: 뒤에는 계정 이름이 필요합니다`],
];

/** The text to show for a server error. */
export function errorText(code: string | null | undefined, message: string, lang: Lang): string {
  if (lang !== 'ko') return message;
  if (code === 'bad_query' || code === null || code === undefined) {
    // The position suffix "(at character N)" is shown by the marked query instead.
    const bare = message.replace(/\s*\(at character \d+\)\s*$/, '');
    for (const [pattern, korean] of QUERY_KO) {
      const match = pattern.exec(bare);
      if (match) return korean(match);
    }
  }
  if (code && CODES_KO[code]) return CODES_KO[code];
  return message;
}

/** Language codes a column filter accepts (ISO 639-1, the ones the sources tag posts with most). */
export const LANGUAGE_CODES = ['ko', 'en', 'ja', 'zh', 'es', 'pt', 'fr', 'de', 'it', 'id', 'th', 'vi', 'tl', 'ar', 'ru', 'tr', 'hi', 'ms', 'nl', 'pl', 'sv', 'uk', 'fa', 'he'] as const;

/** Whether `code` is a language the filter knows (`jp` is not: Japanese is `ja`). */
export function knownLanguage(code: string): boolean {
  return (LANGUAGE_CODES as readonly string[]).includes(code.trim().toLowerCase());
}
