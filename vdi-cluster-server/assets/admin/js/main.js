// The page's shell: sign-in, navigation between views, the language
// switch, live updates (server-sent events plus a slow tick for ages).
import { applyStatic, initLang, lang, setLang, t } from './i18n.js';
import { csrfToken, currentSession, onSignedOut, resume, signOut } from './api.js';
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

async function boot() {
  initLang();
  live.onState((on) => {
    const el = document.getElementById('live');
    el.dataset.state = on ? 'on' : 'off';
    el.textContent = on ? t('live.on') : t('live.off');
  });
  live.subscribe(() => refreshSoon());
  onSignedOut(() => {
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
