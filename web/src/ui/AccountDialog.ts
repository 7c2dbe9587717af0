// AccountDialog: sign up, the "check your e-mail" step, verify from the link
// (with the password chosen at sign-up: never on load, so a mail scanner that
// opens the link confirms nothing), log in, resend the confirmation, log out,
// log out everywhere, change and reset the password, with each error shown
// next to the field that caused it.

import { ApiError, auth } from '../api';
import { t } from '../i18n';
import { login, logout, logoutEverywhere, signedInEmail } from '../session';

/** The dialog's screens. */
export type AccountMode =
  | 'login'
  | 'signup'
  | 'check-email'
  | 'verify'
  | 'resend'
  | 'reset-request'
  | 'reset-sent'
  | 'reset-confirm'
  | 'change-password'
  | 'account';

interface FieldSpec {
  name: string;
  label: string;
  type: string;
  autocomplete: string;
}

/** The account dialog. */
export class AccountDialog {
  readonly el: HTMLDialogElement;
  private readonly content: HTMLElement;
  private mode: AccountMode = 'login';
  private token = '';
  private notice = '';

  constructor(private readonly onSignedIn: () => void, private readonly onSignedOut: () => void) {
    this.el = document.createElement('dialog');
    this.el.className = 'account-dialog';
    this.el.setAttribute('aria-labelledby', 'account-title');
    this.content = document.createElement('div');
    this.el.append(this.content);
    this.el.addEventListener('keydown', (event) => event.stopPropagation());
    this.el.addEventListener('click', (event) => {
      if (event.target === this.el) this.close();
    });
  }

  /** Opens on a screen; `token` is the one from a verify or reset link. */
  open(mode: AccountMode, token = '', notice = ''): void {
    this.mode = mode;
    this.token = token;
    this.notice = notice;
    this.render();
    if (!this.el.open) this.el.showModal();
    this.content.querySelector<HTMLInputElement>('input')?.focus();
  }

  /** Closes the dialog. */
  close(): void {
    if (this.el.open) this.el.close();
  }

  /** Redraws in the current language. */
  relabel(): void {
    if (this.el.open) this.render();
  }

  private heading(text: string): HTMLElement {
    const heading = document.createElement('h2');
    heading.id = 'account-title';
    heading.textContent = text;
    return heading;
  }

  private paragraph(text: string, className = 'notice'): HTMLElement {
    const p = document.createElement('p');
    p.className = className;
    p.setAttribute('role', 'status');
    p.textContent = text;
    return p;
  }

  private linkButton(text: string, onClick: () => void): HTMLButtonElement {
    const node = document.createElement('button');
    node.type = 'button';
    node.className = 'link-button';
    node.textContent = text;
    node.addEventListener('click', onClick);
    return node;
  }

  private closeButton(): HTMLButtonElement {
    const node = document.createElement('button');
    node.type = 'button';
    node.className = 'icon-button dialog-close';
    node.textContent = '×';
    node.setAttribute('aria-label', t.close);
    node.addEventListener('click', () => this.close());
    return node;
  }

  private form(title: string, fields: FieldSpec[], submitLabel: string, submit: (values: Record<string, string>) => Promise<void>): HTMLFormElement {
    const form = document.createElement('form');
    form.noValidate = true;
    form.append(this.heading(title));
    if (this.notice) form.append(this.paragraph(this.notice));
    for (const spec of fields) {
      const row = document.createElement('div');
      row.className = 'form-row';
      const input = document.createElement('input');
      input.id = `account-${spec.name}`;
      input.name = spec.name;
      input.type = spec.type;
      input.autocomplete = spec.autocomplete as AutoFill;
      input.required = true;
      const label = document.createElement('label');
      label.htmlFor = input.id;
      label.textContent = spec.label;
      const error = document.createElement('div');
      error.className = 'field-error';
      error.id = `account-${spec.name}-error`;
      error.dataset.field = spec.name;
      error.setAttribute('aria-live', 'polite');
      input.setAttribute('aria-describedby', error.id);
      row.append(label, input, error);
      form.append(row);
    }
    const formError = document.createElement('div');
    formError.className = 'field-error form-error';
    formError.dataset.field = '';
    formError.setAttribute('role', 'alert');
    const submitButton = document.createElement('button');
    submitButton.type = 'submit';
    submitButton.className = 'primary';
    submitButton.textContent = submitLabel;
    form.append(formError, submitButton);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      for (const node of form.querySelectorAll<HTMLElement>('.field-error')) node.textContent = '';
      for (const node of form.querySelectorAll('input')) node.removeAttribute('aria-invalid');
      const values: Record<string, string> = {};
      for (const spec of fields) values[spec.name] = (form.elements.namedItem(spec.name) as HTMLInputElement).value;
      submitButton.disabled = true;
      submit(values)
        .catch((error) => this.showError(form, error, fields))
        .finally(() => {
          submitButton.disabled = false;
        });
    });
    return form;
  }

  /** Puts the server's message next to the field it names (or under the form). */
  private showError(form: HTMLFormElement, error: unknown, fields: FieldSpec[]): void {
    const body = error instanceof ApiError ? error.body : { error: String(error), field: undefined as string | undefined };
    let message = body.error;
    if (error instanceof ApiError && error.status === 429 && error.retryAfterSeconds) message = `${message} (${t.retryIn(error.retryAfterSeconds)})`;
    const field = body.field && fields.some((spec) => spec.name === body.field) ? body.field : null;
    const target = form.querySelector<HTMLElement>(`.field-error[data-field="${field ?? ''}"]`);
    if (target) target.textContent = message;
    if (field) {
      const input = form.elements.namedItem(field) as HTMLInputElement | null;
      input?.setAttribute('aria-invalid', 'true');
      input?.focus();
    }
  }

  private render(): void {
    const email: FieldSpec = { name: 'email', label: t.email, type: 'email', autocomplete: 'email' };
    const password: FieldSpec = { name: 'password', label: t.password, type: 'password', autocomplete: 'current-password' };
    const newPassword: FieldSpec = { name: 'password', label: t.newPassword, type: 'password', autocomplete: 'new-password' };
    const nodes: HTMLElement[] = [this.closeButton()];
    switch (this.mode) {
      case 'login': {
        nodes.push(
          this.form(t.signIn, [email, password], t.signIn, async (values) => {
            try {
              await login(values.email.trim(), values.password);
            } catch (error) {
              // The server answers an unconfirmed address like a wrong password (so that
              // nobody learns which addresses have accounts); say both, and offer a resend.
              if (error instanceof ApiError && error.status === 401) {
                throw new ApiError(401, { ...error.body, error: t.loginFailedHint }, null);
              }
              throw error;
            }
            this.close();
            this.onSignedIn();
          }),
        );
        const links = document.createElement('div');
        links.className = 'dialog-links';
        links.append(
          this.linkButton(t.signUp, () => this.open('signup')),
          this.linkButton(t.forgot, () => this.open('reset-request')),
          this.linkButton(t.resend, () => this.open('resend')),
        );
        nodes.push(links);
        break;
      }
      case 'signup': {
        nodes.push(
          this.form(t.signUp, [email, newPassword], t.signUp, async (values) => {
            await auth.signup(values.email.trim(), values.password);
            this.open('check-email');
          }),
        );
        const links = document.createElement('div');
        links.className = 'dialog-links';
        links.append(this.linkButton(t.signIn, () => this.open('login')));
        nodes.push(links);
        break;
      }
      case 'check-email':
        nodes.push(this.heading(t.signUp), this.paragraph(t.checkEmail), this.linkButton(t.signIn, () => this.open('login')));
        break;
      case 'reset-sent':
        nodes.push(this.heading(t.forgot), this.paragraph(t.checkEmailReset), this.linkButton(t.signIn, () => this.open('login')));
        break;
      case 'verify':
        nodes.push(
          this.form(t.verifyConfirm, [{ ...password, label: t.password }], t.verifyConfirm, async (values) => {
            await auth.verify(this.token, values.password);
            this.open('login', '', t.verified);
          }),
        );
        nodes[nodes.length - 1].querySelector('h2')?.after(this.paragraph(t.verifyPrompt));
        break;
      case 'resend':
        nodes.push(
          this.form(t.resend, [email], t.resend, async (values) => {
            await auth.resend(values.email.trim());
            this.open('login', '', t.resendSent);
          }),
        );
        break;
      case 'change-password':
        nodes.push(
          this.form(
            t.changePassword,
            [
              { name: 'current_password', label: t.currentPassword, type: 'password', autocomplete: 'current-password' },
              { name: 'new_password', label: t.newPassword, type: 'password', autocomplete: 'new-password' },
            ],
            t.changePassword,
            async (values) => {
              await auth.changePassword(values.current_password, values.new_password);
              this.open('account', '', t.passwordChanged);
            },
          ),
        );
        break;
      case 'reset-request':
        nodes.push(
          this.form(t.forgot, [email], t.resetRequest, async (values) => {
            await auth.resetRequest(values.email.trim());
            this.open('reset-sent');
          }),
        );
        break;
      case 'reset-confirm':
        nodes.push(
          this.form(t.resetConfirm, [newPassword], t.resetConfirm, async (values) => {
            await auth.resetConfirm(this.token, values.password);
            this.open('login', '', t.resetDone);
          }),
        );
        break;
      case 'account': {
        const out = document.createElement('button');
        out.type = 'button';
        out.className = 'primary';
        out.textContent = t.signOut;
        out.addEventListener('click', async () => {
          await logout();
          this.close();
          this.onSignedOut();
        });
        const everywhere = document.createElement('button');
        everywhere.type = 'button';
        everywhere.textContent = t.logoutEverywhere;
        everywhere.addEventListener('click', async () => {
          try {
            await logoutEverywhere();
          } catch {
            await logout();
          }
          this.close();
          this.onSignedOut();
        });
        nodes.push(this.heading(t.account));
        if (this.notice) nodes.push(this.paragraph(this.notice));
        nodes.push(
          this.paragraph(t.signedInAs(signedInEmail() ?? '')),
          this.linkButton(t.changePassword, () => this.open('change-password')),
          out,
          everywhere,
        );
        break;
      }
    }
    this.content.replaceChildren(...nodes);
  }
}
