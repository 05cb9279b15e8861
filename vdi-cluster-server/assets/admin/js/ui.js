// Pieces every view shares: the notice line, busy buttons, the summary
// figures, the reconcile report, the pager of a paginated list, and
// regions that refresh without losing the keyboard focus.
import { h, replace, badge } from './dom.js';
import { t } from './i18n.js';
import { localTime, num } from './format.js';

/** Shows `text` in the notice line: `kind` is `ok` or `error` (errors are announced at once). */
export function notice(kind, text) {
  const el = document.getElementById('notice');
  el.hidden = false;
  el.dataset.kind = kind;
  el.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  el.textContent = text;
}

/** Hides the notice line. */
export function clearNotice() {
  const el = document.getElementById('notice');
  el.hidden = true;
  el.textContent = '';
}

/** Runs `action` with `button` disabled; a failure shows the API's message. Returns the result or `undefined`. */
export async function busy(button, action) {
  const label = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  button.textContent = t('working');
  try {
    return await action();
  } catch (e) {
    notice('error', e.status === 0 ? t('error.network', { e: e.message }) : e.message);
    return undefined;
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    button.textContent = label;
  }
}

/** Replaces `region`'s contents, keeping the focus on the element with the same `data-key`. */
export function refreshRegion(region, ...children) {
  const active = document.activeElement;
  const key = active && region.contains(active) ? active.dataset.key : undefined;
  replace(region, ...children);
  if (key) {
    const again = region.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again) again.focus();
  }
}

/** Rows per page of a paginated list (the API's `limit`). */
export const PAGE_SIZE = 20;

/**
 * The pager of a page of a list (`{total, offset}` as the API answers
 * them, `shown` rows on it): previous / next and "x–y of total"; `go` gets
 * the offset of the page asked for. `id` names it, `what` is the list.
 */
export function pager(id, { total, offset }, shown, what, go) {
  const last = offset + shown;
  const button = (key, label, disabled, to) => {
    const b = h('button', { type: 'button', class: 'secondary', 'data-key': `${id}-${key}`, disabled }, label);
    b.addEventListener('click', () => go(to));
    return b;
  };
  return h('nav', { class: 'pager', id, 'aria-label': t('pager.label', { what }) },
    button('prev', t('pager.previous'), offset <= 0, Math.max(0, offset - PAGE_SIZE)),
    h('span', { class: 'pager-range', 'data-field': 'range' },
      t('pager.range', { from: num(shown ? offset + 1 : 0), to: num(last), total: num(total) })),
    button('next', t('pager.next'), last >= total, offset + PAGE_SIZE));
}

/** The offset of the last page of a list of `total` rows. */
export function lastPage(total) {
  return Math.max(0, Math.floor((total - 1) / PAGE_SIZE) * PAGE_SIZE);
}

/** The exam platform's three figures (and the policy counts) from `GET /api/vdi/workers/summary`. */
export function figures(s) {
  const card = (id, label, value) => h('div', { class: 'card' },
    h('div', { class: 'label', id: `${id}-label` }, label),
    h('div', { class: 'figure', id, 'aria-describedby': `${id}-label` }, value));
  return h('div', {},
    h('div', { class: 'cards' },
      card('fig-workers', t('fig.workers'), `${num(s.healthyWorkers)} / ${num(s.totalWorkers)}`),
      card('fig-slots', t('fig.slots'), `${num(s.totalAvailableSessions)} / ${num(s.totalMaxSessions)}`),
      card('fig-active', t('fig.active'), num(s.totalActiveSessions))),
    h('p', { class: 'hint' }, t('fig.policy', {
      draining: s.drainingWorkers, drained: s.drainedWorkers, disabled: s.disabledWorkers,
      unreachable: s.unreachableWorkers, offline: s.offlineWorkers,
    })));
}

const REPORT_COUNTS = ['workersChecked', 'dispatchesScanned', 'reservationsReclaimed', 'goneRemoved',
  'staleRemoved', 'failedWorkerSessions', 'migrated', 'migrationFailed', 'orphaned', 'leftInPlace',
  'sessionsAdopted', 'reservationsAdopted', 'duplicatesStopped', 'sessionsLost'];

/** A reconcile report as a list of facts. */
export function report(r) {
  const facts = h('dl', { class: 'facts', id: 'reconcile-report' });
  const add = (key, value) => facts.append(h('dt', {}, t(`report.${key}`)), h('dd', { 'data-field': key }, value));
  add('startedAt', localTime(r.startedAt));
  for (const key of REPORT_COUNTS) if (key in r) add(key, num(r[key]));
  add('scanComplete', r.scanComplete ? t('yes') : t('no'));
  if (r.pass) {
    add('pass', t(r.pass.complete ? 'report.passComplete' : 'report.passUnderWay', {
      n: num(r.pass.dispatchesScanned), steps: num(r.pass.steps), since: localTime(r.pass.startedAt),
    }));
  }
  add('massFailureGuard', r.massFailureGuard ? t('yes') : t('no'));
  add('policyChanges', r.policyChanges.length
    ? r.policyChanges.map((c) => `${c.worker}: ${c.from.state} → ${c.to.state}`).join('; ') : '0');
  add('drift', r.drift.length
    ? r.drift.map((d) => `${JSON.stringify(d.counter)} ${d.stored} → ${d.actual}`).join('; ') : '0');
  return facts;
}

const TONES = {
  active: 'ok', pending: 'muted', draining: 'warn', drained: 'warn',
  disabled: 'muted', offline: 'bad', unreachable: 'bad', unhealthy: 'bad',
};

/** A worker's status as a badge (the API's value, translated). */
export function statusBadge(status) {
  return badge(t(`status.${status}`), TONES[status] || 'muted', { 'data-status': status });
}

/** Seconds until the next automatic refresh of figures and ages. */
export const REFRESH_SEC = 5;
