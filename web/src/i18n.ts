// UI strings in English and Korean. The language follows the browser until
// the reader picks one, and the choice is remembered.

import type { Lang } from './logic/time';

const en = {
  appName: 'Deck',
  search: 'Search',
  searchPlaceholder: 'Search or add a column…  (/ to focus)',
  searchHelp: 'Words (all must match), "exact phrase", OR, -exclude, #hashtag, @mention, from:name, to:name, lang:xx, filter:media, filter:links, -filter:retweets, min_retweets:N, min_faves:N, since:YYYY-MM-DD, until:YYYY-MM-DD',
  trends: 'Trends',
  hashtags: 'Hashtags',
  trending: 'Trending',
  topRetweeted: 'Most retweeted',
  window: 'Window',
  newPosts: (n: number) => (n === 1 ? '1 new post' : `${n} new posts`),
  retweetedBy: (names: string, n: number) => (n > 1 ? `Retweeted by ${names} and ${n - 1} more` : `Retweeted by ${names}`),
  retweetedByN: (n: number) => `retweeted by ${n}`,
  retweets: 'Retweets',
  likes: 'Likes',
  media: 'Media',
  quoted: 'Quoted post',
  replyingTo: (h: string) => `Replying to @${h}`,
  remove: 'Remove column',
  moveLeft: 'Move left',
  moveRight: 'Move right',
  settings: 'Column settings',
  rename: 'Title',
  width: 'Width',
  narrow: 'Narrow',
  medium: 'Medium',
  wide: 'Wide',
  showRetweets: 'Show retweets',
  mediaOnly: 'Media only',
  language: 'Language (e.g. ko, en)',
  minRetweets: 'Min retweets',
  minLikes: 'Min likes',
  excludeWords: 'Exclude words (space-separated)',
  mutes: 'Mute (words, /regex/, @account — one per line)',
  slowMode: 'Slow mode: max posts per minute (0 = off)',
  collapseRetweets: 'Show a retweeted post once',
  notify: 'Desktop notifications',
  apply: 'Apply',
  close: 'Close',
  stateLoading: 'Loading…',
  stateConnecting: 'Connecting…',
  stateCatchingUp: 'Catching up…',
  stateLive: 'Live',
  statePaused: 'Paused',
  stateRateLimited: 'Rate-limited',
  stateFailed: 'Failed',
  stateOffline: 'Offline — reconnecting',
  retryIn: (s: number) => `retrying in ${s}s`,
  retry: 'Retry',
  empty: 'No posts yet. New matching posts will appear here.',
  endOfHistory: 'No older posts.',
  loadingOlder: 'Loading older posts…',
  connected: 'Connected',
  disconnected: 'Disconnected',
  connecting: 'Connecting',
  signIn: 'Log in',
  signUp: 'Sign up',
  signOut: 'Log out',
  email: 'E-mail',
  password: 'Password',
  newPassword: 'New password',
  forgot: 'Forgot password?',
  resetRequest: 'Send reset link',
  resetConfirm: 'Set new password',
  checkEmail: 'Check your e-mail: we sent you a link to confirm your address.',
  checkEmailReset: 'If that address has an account, we sent it a link to reset the password.',
  verified: 'Your e-mail is confirmed. You can log in now.',
  verifying: 'Confirming your e-mail…',
  resetDone: 'Your password is changed. Log in with the new one.',
  signedInAs: (e: string) => `Signed in as ${e}`,
  account: 'Account',
  theme: 'Theme',
  dark: 'Dark',
  light: 'Light',
  help: 'Keyboard shortcuts',
  shortcuts: [
    ['/', 'Focus the search box'],
    ['← → or h l', 'Move between columns'],
    ['j k', 'Scroll the focused column'],
    ['Alt+← Alt+→', 'Move the focused column'],
    ['n', 'Show new posts in the focused column'],
    ['?', 'This help'],
  ] as [string, string][],
  badQuery: 'Bad query',
  deckSaved: 'Deck saved',
  user: (h: string) => `@${h}`,
  columns: 'Columns',
  error: 'Something went wrong',
};

const ko: typeof en = {
  appName: 'Deck',
  search: '검색',
  searchPlaceholder: '검색하거나 칼럼 추가…  (/ 로 이동)',
  searchHelp: '단어(모두 일치), "정확한 구절", OR, -제외, #해시태그, @멘션, from:이름, to:이름, lang:xx, filter:media, filter:links, -filter:retweets, min_retweets:N, min_faves:N, since:YYYY-MM-DD, until:YYYY-MM-DD',
  trends: '트렌드',
  hashtags: '해시태그',
  trending: '급상승',
  topRetweeted: '가장 많이 리트윗된 글',
  window: '기간',
  newPosts: (n: number) => `새 글 ${n}개`,
  retweetedBy: (names: string, n: number) => (n > 1 ? `${names} 외 ${n - 1}명이 리트윗함` : `${names} 님이 리트윗함`),
  retweetedByN: (n: number) => `${n}명이 리트윗함`,
  retweets: '리트윗',
  likes: '마음에 들어요',
  media: '미디어',
  quoted: '인용한 글',
  replyingTo: (h: string) => `@${h} 님에게 보내는 답글`,
  remove: '칼럼 삭제',
  moveLeft: '왼쪽으로',
  moveRight: '오른쪽으로',
  settings: '칼럼 설정',
  rename: '제목',
  width: '너비',
  narrow: '좁게',
  medium: '보통',
  wide: '넓게',
  showRetweets: '리트윗 보기',
  mediaOnly: '미디어만',
  language: '언어 (예: ko, en)',
  minRetweets: '최소 리트윗 수',
  minLikes: '최소 마음에 들어요 수',
  excludeWords: '제외할 단어 (공백으로 구분)',
  mutes: '뮤트 (단어, /정규식/, @계정 — 한 줄에 하나)',
  slowMode: '느리게 보기: 분당 최대 글 수 (0 = 끔)',
  collapseRetweets: '리트윗된 글은 한 번만 보기',
  notify: '데스크톱 알림',
  apply: '적용',
  close: '닫기',
  stateLoading: '불러오는 중…',
  stateConnecting: '연결 중…',
  stateCatchingUp: '따라잡는 중…',
  stateLive: '실시간',
  statePaused: '일시 정지',
  stateRateLimited: '요청 제한',
  stateFailed: '실패',
  stateOffline: '오프라인 — 다시 연결 중',
  retryIn: (s: number) => `${s}초 후 다시 시도`,
  retry: '다시 시도',
  empty: '아직 글이 없습니다. 새 글이 여기에 나타납니다.',
  endOfHistory: '더 이전 글이 없습니다.',
  loadingOlder: '이전 글 불러오는 중…',
  connected: '연결됨',
  disconnected: '연결 끊김',
  connecting: '연결 중',
  signIn: '로그인',
  signUp: '가입하기',
  signOut: '로그아웃',
  email: '이메일',
  password: '비밀번호',
  newPassword: '새 비밀번호',
  forgot: '비밀번호를 잊으셨나요?',
  resetRequest: '재설정 링크 보내기',
  resetConfirm: '새 비밀번호 설정',
  checkEmail: '이메일을 확인하세요. 주소를 확인하는 링크를 보냈습니다.',
  checkEmailReset: '가입된 주소라면 비밀번호 재설정 링크를 보냈습니다.',
  verified: '이메일이 확인되었습니다. 이제 로그인할 수 있습니다.',
  verifying: '이메일 확인 중…',
  resetDone: '비밀번호가 바뀌었습니다. 새 비밀번호로 로그인하세요.',
  signedInAs: (e: string) => `${e} (으)로 로그인됨`,
  account: '계정',
  theme: '테마',
  dark: '어둡게',
  light: '밝게',
  help: '단축키',
  shortcuts: [
    ['/', '검색창으로 이동'],
    ['← → 또는 h l', '칼럼 사이 이동'],
    ['j k', '선택한 칼럼 스크롤'],
    ['Alt+← Alt+→', '선택한 칼럼 옮기기'],
    ['n', '선택한 칼럼의 새 글 보기'],
    ['?', '이 도움말'],
  ],
  badQuery: '잘못된 검색어',
  deckSaved: '덱 저장됨',
  user: (h: string) => `@${h}`,
  columns: '칼럼',
  error: '문제가 생겼습니다',
};

/** The strings of one language. */
export type Strings = typeof en;

const STORAGE_KEY = 'deck.lang';

/** The language to start in: the saved choice, else the browser's. */
export function initialLang(): Lang {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (saved === 'en' || saved === 'ko') return saved;
  const browser = (navigator.languages?.[0] ?? navigator.language ?? 'en').toLowerCase();
  return browser.startsWith('ko') ? 'ko' : 'en';
}

let current: Lang = 'en';

/** The strings of the current language. */
export let t: Strings = en;

/** Switches the UI language (callers re-render). */
export function setLang(lang: Lang, persist: boolean): void {
  current = lang;
  t = lang === 'ko' ? ko : en;
  document.documentElement.lang = lang;
  if (persist) localStorage.setItem(STORAGE_KEY, lang);
}

/** The current UI language. */
export function lang(): Lang {
  return current;
}
