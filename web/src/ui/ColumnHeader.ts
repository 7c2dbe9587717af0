// ColumnHeader: a column's title, its always-visible state, and its controls
// (move, settings, remove), plus the drag handle for reordering and the
// resize handle on the column's edge.

import type { ColumnConfig } from '../deck';
import { MAX_WIDTH, MIN_WIDTH } from '../deck';
import { t } from '../i18n';
import { displayTitle } from '../logic/query';
import { routeForQuery } from '../logic/routes';

/** A column's state as the reader sees it. */
export type ColumnState = 'loading' | 'connecting' | 'catching_up' | 'live' | 'paused' | 'rate_limited' | 'failed' | 'offline';

/** What the deck does for a column's controls. */
export interface ColumnControls {
  remove(id: string): void;
  move(id: string, delta: number): void;
  moveTo(id: string, targetId: string): void;
  resized(id: string, width: number): void;
  toggleSettings(): void;
  retry(): void;
}

function button(className: string, text: string, label: string, onClick: () => void): HTMLButtonElement {
  const node = document.createElement('button');
  node.type = 'button';
  node.className = `icon-button ${className}`;
  node.textContent = text;
  node.title = label;
  node.setAttribute('aria-label', label);
  node.addEventListener('click', (event) => {
    event.stopPropagation();
    onClick();
  });
  return node;
}

/** Builds the header of a column and wires drag-reorder and resize on `column`. */
export class ColumnHeader {
  readonly el: HTMLElement;
  private readonly title: HTMLElement;
  private readonly status: HTMLElement;
  private readonly statusText: HTMLElement;
  private readonly retryButton: HTMLButtonElement;
  readonly settingsButton: HTMLButtonElement;
  private readonly chips: HTMLElement;

  constructor(
    private readonly column: HTMLElement,
    private config: ColumnConfig,
    private readonly controls: ColumnControls,
  ) {
    this.el = document.createElement('header');
    this.el.className = 'column-header';
    this.el.draggable = true;
    const titleRow = document.createElement('div');
    titleRow.className = 'column-title-row';
    this.title = document.createElement('h2');
    this.title.className = 'column-title';
    this.showTitle();
    const buttons = document.createElement('div');
    buttons.className = 'column-buttons';
    this.settingsButton = button('settings-button', '⚙', t.settings, () => controls.toggleSettings());
    this.settingsButton.setAttribute('aria-expanded', 'false');
    buttons.append(
      button('move-left', '‹', t.moveLeft, () => controls.move(this.config.id, -1)),
      button('move-right', '›', t.moveRight, () => controls.move(this.config.id, 1)),
      ...(config.filters.kind === 'trends' ? [] : [button('copy-link-button', '🔗', t.copyLink, () => this.copyLink())]),
      this.settingsButton,
      button('remove-button', '×', t.remove, () => controls.remove(this.config.id)),
    );
    titleRow.append(this.title, buttons);
    this.status = document.createElement('div');
    this.status.className = 'column-status';
    this.status.setAttribute('role', 'status');
    this.statusText = document.createElement('span');
    this.statusText.className = 'status-text';
    this.retryButton = button('retry-button', t.retry, t.retry, () => controls.retry());
    this.retryButton.hidden = true;
    this.status.append(this.statusText, this.retryButton);
    this.chips = document.createElement('div');
    this.chips.className = 'column-chips';
    this.showChips();
    this.el.append(titleRow, this.chips, this.status);
    this.wireDrag();
    this.wireResize();
  }

  /** The title as shown: the reader's own, or the automatic one in the current language. */
  get titleText(): string {
    return displayTitle(this.config, t);
  }

  private showTitle(): void {
    const text = this.titleText;
    if (this.title.textContent !== text) this.title.textContent = text;
    this.title.title = this.config.query || text;
    if (this.column.getAttribute('aria-label') !== text) this.column.setAttribute('aria-label', text);
  }

  /** The active filters as chips under the title, so a quiet column says why. */
  private showChips(): void {
    const f = this.config.filters;
    const chips: string[] = [];
    if (f.kind !== 'trends') {
      if (f.retweets === false) chips.push(t.chipNoRetweets);
      if (f.media) chips.push(t.chipMedia);
      if (f.lang) chips.push(`lang:${f.lang}`);
      if (f.min_retweets) chips.push(`⟲ ≥${f.min_retweets}`);
      if (f.min_faves) chips.push(`♥ ≥${f.min_faves}`);
      for (const word of f.exclude ?? []) chips.push(`−${word}`);
      if (f.mutes?.length) chips.push(t.chipMuted(f.mutes.length));
      if (f.slow) chips.push(t.chipSlow(f.slow));
    }
    const text = chips.join('\u0000');
    if (this.chips.dataset.shown === text) return;
    this.chips.dataset.shown = text;
    this.chips.replaceChildren(
      ...chips.map((label) => {
        const chip = document.createElement('span');
        chip.className = 'chip';
        chip.textContent = label;
        return chip;
      }),
    );
  }

  /** Copies the column's deep link (`#/tag/…`, `#/user/…`, `#/search?q=…`). */
  private copyLink(): void {
    const url = `${location.origin}${location.pathname}${routeForQuery(this.config.query)}`;
    const done = () => this.flash(t.linkCopied);
    if (navigator.clipboard?.writeText) navigator.clipboard.writeText(url).then(done, () => window.prompt(t.copyLink, url));
    else window.prompt(t.copyLink, url);
  }

  /** Shows a short note in the status line for a moment. */
  flash(note: string): void {
    const previous = this.statusText.textContent;
    this.statusText.textContent = note;
    setTimeout(() => {
      if (this.statusText.textContent === note) this.statusText.textContent = previous;
    }, 1500);
  }

  /** Shows the column's state and, when it failed or waits, why. */
  setState(state: ColumnState, detail?: string): void {
    const labels: Record<ColumnState, string> = {
      loading: t.stateLoading,
      connecting: t.stateConnecting,
      catching_up: t.stateCatchingUp,
      live: t.stateLive,
      paused: t.statePaused,
      rate_limited: t.stateRateLimited,
      failed: t.stateFailed,
      offline: t.stateOffline,
    };
    // Written only when it changes: a role=status region is announced on every write.
    if (this.status.dataset.state !== state) {
      this.status.dataset.state = state;
      this.column.dataset.state = state;
    }
    const text = detail ? `${labels[state]} — ${detail}` : labels[state];
    if (this.statusText.textContent !== text) this.statusText.textContent = text;
    const hideRetry = state !== 'failed' && state !== 'rate_limited';
    if (this.retryButton.hidden !== hideRetry) this.retryButton.hidden = hideRetry;
  }

  /** Relabels the controls after a language switch. */
  relabel(): void {
    const labels: [string, string][] = [['.move-left', t.moveLeft], ['.move-right', t.moveRight], ['.copy-link-button', t.copyLink], ['.settings-button', t.settings], ['.remove-button', t.remove]];
    for (const [selector, label] of labels) {
      const node = this.el.querySelector<HTMLElement>(selector);
      if (node) {
        node.title = label;
        node.setAttribute('aria-label', label);
      }
    }
    this.retryButton.textContent = t.retry;
    this.column.querySelector('.resize-handle')?.setAttribute('aria-label', t.width);
    this.showTitle();
    this.chips.dataset.shown = '\u0001';
    this.showChips();
  }

  /** Updates the title after a rename. */
  setConfig(config: ColumnConfig): void {
    this.config = config;
    this.showTitle();
    this.showChips();
  }

  private wireDrag(): void {
    this.el.addEventListener('dragstart', (event) => {
      event.dataTransfer?.setData('application/x-deck-column', this.config.id);
      if (event.dataTransfer) event.dataTransfer.effectAllowed = 'move';
      this.column.classList.add('dragging');
    });
    this.el.addEventListener('dragend', () => this.column.classList.remove('dragging'));
    this.column.addEventListener('dragover', (event) => {
      if (event.dataTransfer?.types.includes('application/x-deck-column')) {
        event.preventDefault();
        this.column.classList.add('drop-target');
      }
    });
    this.column.addEventListener('dragleave', () => this.column.classList.remove('drop-target'));
    this.column.addEventListener('drop', (event) => {
      this.column.classList.remove('drop-target');
      const id = event.dataTransfer?.getData('application/x-deck-column');
      if (id && id !== this.config.id) {
        event.preventDefault();
        this.controls.moveTo(id, this.config.id);
      }
    });
  }

  private wireResize(): void {
    const handle = document.createElement('div');
    handle.className = 'resize-handle';
    handle.tabIndex = 0;
    handle.setAttribute('role', 'separator');
    handle.setAttribute('aria-orientation', 'vertical');
    handle.setAttribute('aria-label', t.width);
    handle.setAttribute('aria-valuemin', String(MIN_WIDTH));
    handle.setAttribute('aria-valuemax', String(MAX_WIDTH));
    const apply = (width: number, save: boolean) => {
      const clamped = Math.round(Math.min(MAX_WIDTH, Math.max(MIN_WIDTH, width)));
      this.column.style.setProperty('--column-width', `${clamped}px`);
      handle.setAttribute('aria-valuenow', String(clamped));
      if (save) this.controls.resized(this.config.id, clamped);
    };
    handle.setAttribute('aria-valuenow', String(this.config.width));
    handle.addEventListener('pointerdown', (event) => {
      event.preventDefault();
      handle.setPointerCapture(event.pointerId);
      const startX = event.clientX;
      const startWidth = this.column.getBoundingClientRect().width;
      let width = startWidth;
      const move = (moveEvent: PointerEvent) => {
        width = startWidth + moveEvent.clientX - startX;
        apply(width, false);
      };
      const up = () => {
        handle.removeEventListener('pointermove', move);
        handle.removeEventListener('pointerup', up);
        apply(width, true);
      };
      handle.addEventListener('pointermove', move);
      handle.addEventListener('pointerup', up);
    });
    handle.addEventListener('keydown', (event) => {
      if (event.key !== 'ArrowLeft' && event.key !== 'ArrowRight') return;
      event.preventDefault();
      event.stopPropagation();
      apply(this.column.getBoundingClientRect().width + (event.key === 'ArrowRight' ? 20 : -20), true);
    });
    this.column.append(handle);
  }
}
