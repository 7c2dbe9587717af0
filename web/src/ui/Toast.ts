// Toast: a short message at the bottom of the page with one action ("Undo"),
// announced politely to screen readers, gone after a few seconds.

const SHOW_MS = 8_000;

/** The page's one toast. */
export class Toast {
  readonly el: HTMLElement;
  private readonly text: HTMLElement;
  private readonly action: HTMLButtonElement;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private onAction: (() => void) | null = null;

  constructor() {
    this.el = document.createElement('div');
    this.el.className = 'toast';
    this.el.setAttribute('role', 'status');
    this.el.hidden = true;
    this.text = document.createElement('span');
    this.action = document.createElement('button');
    this.action.type = 'button';
    this.action.className = 'toast-action';
    this.action.addEventListener('click', () => {
      const run = this.onAction;
      this.hide();
      run?.();
    });
    this.el.append(this.text, this.action);
  }

  /** Shows `message` with an action button labelled `label`. */
  show(message: string, label: string, onAction: () => void): void {
    clearTimeout(this.timer);
    this.text.textContent = message;
    this.action.textContent = label;
    this.onAction = onAction;
    this.el.hidden = false;
    this.timer = setTimeout(() => this.hide(), SHOW_MS);
  }

  private hide(): void {
    clearTimeout(this.timer);
    this.el.hidden = true;
    this.onAction = null;
  }
}
