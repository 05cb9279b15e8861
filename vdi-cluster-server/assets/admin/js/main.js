// The page's shell: sign-in, navigation between views, the language
// switch, live updates (server-sent events plus a slow tick for ages).
import { applyStatic, initLang, lang, setLang, t } from './i18n.js';
import { h } from './dom.js';
import {
  csrfToken, currentSession, isAdmin, onSignedOut, resume, signOut, signOutEverywhere,
} from './api.js';
import * as live from './live.js';
import { timeZone } from './format.js';
import { clearNotice, notice, REFRESH_SEC } from './ui.js';
import { renderSignIn } from './signin.js';
import * as overview from './views/overview.js';
import * as workers from './views/workers.js';
import * as exams from './views/exams.js';
import * as audit from './views/audit.js';

const VIEWS = { overview, workers, exams, audit };
let mounted = null;
let tick = null;
let pending = null;

function route() {
  const hash = window.location.hash.startsWith('#/') ? window.location.hash.slice(2) : 'overview';
  const [view, ...rest] = hash.split('/').map((part) => decodeURIComponent(part));
  return { view: VIEWS[view] ? view : 'overview', arg: rest.join('/') || null };
}

function header() {
  applyStatic();
  const session = currentSession();
  document.getElementById('lang').value = lang();
  document.getElementById('tz').textContent = t('tz', { tz: timeZone() });
  document.getElementById('nav').hidden = !session;
  document.getElementById('sign-out').hidden = !session;
  document.getElementById('sign-out-all').hidden = !isAdmin();
  document.getElementById('live').hidden = !session;
  document.getElementById('who').textContent = session
    ? t('who', { sub: session.sub, roles: session.roles.join(', ') }) : '';
  const { view } = route();
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.dataset.view === view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function show() {
  header();
  const main = document.getElementById('main');
  if (mounted && mounted.unmount) mounted.unmount();
  mounted = null;
  if (!currentSession()) {
    renderSignIn(main, started);
    return;
  }
  const { view, arg } = route();
  main.replaceChildren();
  mounted = VIEWS[view].mount(main, arg);
  document.title = `${t(`nav.${view}`)} · vdi-cluster`;
}

function refreshSoon() {
  if (pending) return;
  pending = window.setTimeout(() => {
    pending = null;
    if (mounted && mounted.refresh) mounted.refresh();
  }, 250);
}

function started() {
  live.connect(csrfToken());
  if (!tick) tick = window.setInterval(refreshSoon, REFRESH_SEC * 1000);
  if (!window.location.hash.startsWith('#/')) window.location.hash = '#/overview';
  show();
}

function stopped() {
  live.disconnect();
  if (tick) window.clearInterval(tick);
  tick = null;
  show();
}

// An ADMIN's "sign out everywhere": asked in a dialog, since it ends the
// sessions of every operator, this one included.
function signOutAllDialog() {
  const go = h('button', { type: 'submit', class: 'danger', id: 'sign-out-all-confirm' }, t('signout.all'));
  const cancel = h('button', { type: 'button', class: 'secondary' }, t('cancel'));
  const dialog = h('dialog', { 'aria-labelledby': 'sign-out-all-title', id: 'sign-out-all-dialog' },
    h('form', {},
      h('h2', { id: 'sign-out-all-title' }, t('signout.all')),
      h('p', {}, t('signout.allConfirm')),
      h('div', { class: 'actions' }, cancel, go)));
  cancel.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => dialog.remove());
  dialog.querySelector('form').addEventListener('submit', async (e) => {
    e.preventDefault();
    go.disabled = true;
    try {
      const ended = await signOutEverywhere();
      dialog.close();
      stopped();
      notice('ok', t('signout.allDone', { n: ended }));
    } catch (err) {
      dialog.close();
      notice('error', err.message);
    }
  });
  document.body.append(dialog);
  dialog.showModal();
  cancel.focus();
}

async function boot() {
  initLang();
  live.onState((on) => {
    const el = document.getElementById('live');
    el.dataset.state = on ? 'on' : 'off';
    el.textContent = on ? t('live.on') : t('live.off');
  });
  live.subscribe(() => refreshSoon());
  onSignedOut(() => {
    // A refresh still in flight when the operator signed out answers 401
    // after the page stopped: that is no lost session.
    if (!tick) return;
    stopped();
    notice('error', t('error.session'));
  });
  document.getElementById('lang').addEventListener('change', (e) => {
    setLang(e.target.value);
    show();
    const el = document.getElementById('live');
    el.textContent = el.dataset.state === 'on' ? t('live.on') : t('live.off');
  });
  document.getElementById('sign-out').addEventListener('click', async () => {
    await signOut();
    clearNotice();
    stopped();
  });
  document.getElementById('sign-out-all').addEventListener('click', signOutAllDialog);
  window.addEventListener('hashchange', () => {
    clearNotice();
    show();
    document.getElementById('main').focus();
  });
  header();
  if (await resume()) started();
  else show();
}

boot();
