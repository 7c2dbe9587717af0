// ColumnSettings: the panel where a column is renamed, resized and filtered
// (filters become part of its query), and where mutes, slow mode, retweet
// collapsing and desktop notifications are set.

import { ApiError, fetchTimeline } from '../api';
import type { ColumnConfig } from '../deck';
import { WIDTHS } from '../deck';
import { lang, t } from '../i18n';
import { errorText, knownLanguage, LANGUAGE_CODES } from '../logic/errors';
import { effectiveQuery } from '../logic/query';

let fieldCounter = 0;

function field(label: string, input: HTMLElement): HTMLElement {
  const row = document.createElement('div');
  row.className = 'settings-row';
  const id = `f${++fieldCounter}`;
  input.id = id;
  const labelNode = document.createElement('label');
  labelNode.htmlFor = id;
  labelNode.textContent = label;
  if (input instanceof HTMLInputElement && input.type === 'checkbox') row.append(input, labelNode);
  else row.append(labelNode, input);
  return row;
}

function input(type: string, value: string, name: string): HTMLInputElement {
  const node = document.createElement('input');
  node.type = type;
  node.name = name;
  if (type === 'checkbox') node.checked = value === 'true';
  else node.value = value;
  if (type === 'number') node.min = '0';
  return node;
}

/** Builds the settings form; `apply` receives the edited copy of the config. */
export function renderSettings(config: ColumnConfig, isTrends: boolean, apply: (next: ColumnConfig) => void, close: () => void): HTMLElement {
  const form = document.createElement('form');
  form.className = 'column-settings';
  form.setAttribute('aria-label', t.settings);
  const f = config.filters;
  const title = input('text', config.title, 'title');
  const width = document.createElement('select');
  width.name = 'width';
  for (const [key, px] of Object.entries(WIDTHS)) {
    const option = document.createElement('option');
    option.value = String(px);
    option.textContent = key === 'narrow' ? t.narrow : key === 'medium' ? t.medium : t.wide;
    width.append(option);
  }
  const custom = document.createElement('option');
  custom.value = String(config.width);
  custom.textContent = `${config.width}px`;
  if (!Object.values(WIDTHS).includes(config.width as never)) width.append(custom);
  width.value = String(config.width);
  // The query itself, edited in place and checked by the server before it is applied.
  const query = input('text', config.query, 'query');
  query.spellcheck = false;
  const errors = document.createElement('div');
  errors.className = 'settings-error';
  errors.setAttribute('role', 'alert');
  if (!isTrends) form.append(field(t.query, query));
  form.append(field(t.rename, title), field(t.width, width));

  const inputs: Record<string, HTMLInputElement | HTMLTextAreaElement> = {};
  let mediaSizeSelect: HTMLSelectElement | null = null;
  if (!isTrends) {
    inputs.retweets = input('checkbox', String(f.retweets !== false), 'retweets');
    inputs.media = input('checkbox', String(f.media === true), 'media');
    inputs.lang = input('text', f.lang ?? '', 'lang');
    (inputs.lang as HTMLInputElement).maxLength = 3;
    const languages = document.createElement('datalist');
    languages.id = `langs${++fieldCounter}`;
    for (const code of LANGUAGE_CODES) {
      const option = document.createElement('option');
      option.value = code;
      languages.append(option);
    }
    inputs.lang.setAttribute('list', languages.id);
    form.append(languages);
    inputs.min_retweets = input('number', String(f.min_retweets ?? ''), 'min_retweets');
    inputs.min_faves = input('number', String(f.min_faves ?? ''), 'min_faves');
    inputs.exclude = input('text', (f.exclude ?? []).join(' '), 'exclude');
    const mutes = document.createElement('textarea');
    mutes.name = 'mutes';
    mutes.rows = 3;
    mutes.value = (f.mutes ?? []).join('\n');
    inputs.mutes = mutes;
    inputs.slow = input('number', String(f.slow ?? 0), 'slow');
    inputs.collapse = input('checkbox', String(f.collapse !== false), 'collapse');
    inputs.notify = input('checkbox', String(f.notify === true), 'notify');
    const mediaSize = document.createElement('select');
    mediaSize.name = 'media_size';
    for (const [value, label] of [['off', t.mediaOff], ['small', t.mediaSmall], ['large', t.mediaLarge]]) {
      const option = document.createElement('option');
      option.value = value;
      option.textContent = label;
      mediaSize.append(option);
    }
    mediaSize.value = f.media_size ?? 'large';
    mediaSizeSelect = mediaSize;
    form.append(
      field(t.showRetweets, inputs.retweets),
      field(t.mediaOnly, inputs.media),
      field(t.mediaSize, mediaSize),
      field(t.language, inputs.lang),
      field(t.minRetweets, inputs.min_retweets),
      field(t.minLikes, inputs.min_faves),
      field(t.excludeWords, inputs.exclude),
      field(t.mutes, inputs.mutes),
      field(t.slowMode, inputs.slow),
      field(t.collapseRetweets, inputs.collapse),
      field(t.notify, inputs.notify),
    );
  }
  const actions = document.createElement('div');
  actions.className = 'settings-actions';
  const applyButton = document.createElement('button');
  applyButton.type = 'submit';
  applyButton.textContent = t.apply;
  const closeButton = document.createElement('button');
  closeButton.type = 'button';
  closeButton.textContent = t.close;
  closeButton.addEventListener('click', close);
  actions.append(applyButton, closeButton);
  form.append(errors, actions);
  form.addEventListener('keydown', (event) => {
    event.stopPropagation();
    if (event.key === 'Escape') close();
  });
  const fail = (message: string, at?: HTMLElement) => {
    errors.textContent = message;
    if (at) {
      at.setAttribute('aria-invalid', 'true');
      at.focus();
    }
  };
  form.addEventListener('input', () => {
    errors.replaceChildren();
    for (const node of form.querySelectorAll('[aria-invalid]')) node.removeAttribute('aria-invalid');
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next: ColumnConfig = { ...config, filters: { ...config.filters } };
    if (!isTrends) {
      const newQuery = query.value.trim();
      if (!newQuery) return fail(t.queryEmpty, query);
      if (newQuery !== config.query) {
        // A renamed column keeps its title; an automatic one follows the query.
        if (config.title === config.query) next.title = newQuery;
        next.query = newQuery;
      }
      const code = inputs.lang.value.trim().toLowerCase();
      if (code && !knownLanguage(code)) return fail(t.unknownLanguage(code), inputs.lang);
    }
    const titleValue = title.value.trim();
    next.title = titleValue && titleValue !== config.title ? titleValue : next.title;
    next.width = Number(width.value) || config.width;
    if (!isTrends) {
      const checked = (name: string) => (inputs[name] as HTMLInputElement).checked;
      const number = (name: string) => {
        const value = Math.floor(Number(inputs[name].value));
        return Number.isFinite(value) && value > 0 ? value : undefined;
      };
      next.filters.retweets = checked('retweets') ? undefined : false;
      next.filters.media = checked('media') || undefined;
      next.filters.lang = inputs.lang.value.trim().toLowerCase() || undefined;
      next.filters.min_retweets = number('min_retweets');
      next.filters.min_faves = number('min_faves');
      const exclude = inputs.exclude.value.split(/\s+/).filter(Boolean);
      next.filters.exclude = exclude.length ? exclude : undefined;
      const mutes = inputs.mutes.value.split('\n').map((line) => line.trim()).filter(Boolean);
      next.filters.mutes = mutes.length ? mutes : undefined;
      next.filters.slow = number('slow');
      next.filters.collapse = checked('collapse') ? undefined : false;
      next.filters.notify = checked('notify') || undefined;
      const size = mediaSizeSelect?.value;
      next.filters.media_size = size === 'off' || size === 'small' ? size : undefined;
      if (next.filters.notify && typeof Notification !== 'undefined' && Notification.permission === 'default') {
        void Notification.requestPermission();
      }
    }
    // Drop unset keys so the saved deck stays small and stable.
    for (const key of Object.keys(next.filters) as (keyof typeof next.filters)[]) {
      if (next.filters[key] === undefined) delete next.filters[key];
    }
    if (isTrends || effectiveQuery(next.query, next.filters) === effectiveQuery(config.query, config.filters)) {
      apply(next);
      return;
    }
    // A changed query is asked of the server first, with the search box's error display.
    applyButton.disabled = true;
    fetchTimeline(effectiveQuery(next.query, next.filters), null, 1).then(
      () => {
        applyButton.disabled = false;
        apply(next);
      },
      (error) => {
        applyButton.disabled = false;
        if (!(error instanceof ApiError)) return fail(t.error);
        const message = `${t.badQuery}: ${errorText(error.body.code, error.body.error, lang())}`;
        const position = error.body.position;
        const full = effectiveQuery(next.query, next.filters);
        if (error.status === 400 && position !== null && position !== undefined && position < [...next.query].length) {
          const chars = [...next.query];
          const shown = document.createElement('code');
          shown.className = 'search-error-query';
          shown.append(chars.slice(0, position).join(''));
          const mark = document.createElement('mark');
          mark.className = 'search-error-position';
          mark.textContent = chars[position] ?? ' ';
          shown.append(mark, chars.slice(position + 1).join(''));
          fail(message, query);
          errors.append(shown);
          const utf16 = chars.slice(0, position).join('').length;
          query.setSelectionRange(utf16, utf16 + (chars[position]?.length ?? 0));
        } else {
          fail(error.status === 400 ? `${message} — ${full}` : message);
        }
      },
    );
  });
  return form;
}
