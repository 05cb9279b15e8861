// The sign-in form: a pasted ADMIN or PROCTOR JWT, exchanged for the
// session cookie. The token leaves the page as soon as it is sent.
import { h, field, replace } from './dom.js';
import { t } from './i18n.js';
import { signIn } from './api.js';
import { busy, clearNotice } from './ui.js';

/** Shows the sign-in form in `main`; calls `done` once signed in. */
export function renderSignIn(main, done) {
  const token = h('textarea', {
    required: true, autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'signin-help',
  });
  const submit = h('button', { type: 'submit', id: 'sign-in' }, t('signin.submit'));
  const form = h('form', { class: 'panel signin', id: 'signin-form' },
    h('h1', {}, t('signin.title')),
    h('p', { id: 'signin-help' }, t('signin.help')),
    field('token', t('signin.token'), token),
    h('p', { class: 'hint' }, t('signin.hint')),
    submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const value = token.value.trim();
    const session = await busy(submit, () => signIn(value));
    if (session) {
      token.value = '';
      clearNotice();
      done();
    }
  });
  replace(main, form);
  token.focus();
}
