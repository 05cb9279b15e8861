// Overview: the exam platform's three figures, the store and its primary,
// upcoming exams, waiting rooms, capacity asked of the scale hook, the last
// reconcile report and recent events; refreshed live.
import { h, replace, table, badge } from '../dom.js';
import { t } from '../i18n.js';
import { get } from '../api.js';
import { localTime } from '../format.js';
import * as live from '../live.js';
import { figures, notice, refreshRegion, report } from '../ui.js';
import { admission, readiness, upcoming } from './exam_parts.js';

function section(id, title, body) {
  return h('section', { class: 'panel', 'aria-labelledby': id }, h('h2', { id }, title), body);
}

/** Mounts the overview in `main`. */
export function mount(main) {
  const figs = h('div', { id: 'overview-figures' }, t('loading'));
  const store = h('p', { id: 'overview-store' }, t('loading'));
  const exams = h('div', { id: 'overview-exams' }, t('loading'));
  const queues = h('div', { id: 'overview-queues' });
  const capacity = h('div', { id: 'overview-capacity' });
  const reconcile = h('div', { id: 'overview-reconcile' });
  const events = h('div', { id: 'overview-events' });
  replace(main,
    h('h1', {}, t('overview.title')),
    figs,
    section('h-store', t('overview.store'), store),
    section('h-exams', t('overview.exams'), exams),
    section('h-queues', t('overview.queues'), queues),
    section('h-capacity', t('overview.capacity'), capacity),
    section('h-reconcile', t('overview.reconcile'), reconcile),
    section('h-events', t('overview.events'), events));

  async function refresh() {
    refreshStore(store);
    refreshCapacity(capacity);
    try {
      const [summary, calendar] = await Promise.all([
        get('/api/vdi/workers/summary'),
        get('/api/vdi/exams'),
      ]);
      refreshRegion(figs, figures(summary));
      const next = upcoming(calendar.exams).slice(0, 10);
      refreshRegion(exams, next.length ? table(
        [[t('col.exam')], [t('col.start')], [t('col.students'), 'num'], [t('col.fits')], [t('col.readiness')]],
        next.map((e) => ({
          attrs: { 'data-exam': e.examId },
          cells: [
            h('a', { href: `#/exams/${encodeURIComponent(e.examId)}`, 'data-key': `exam-${e.examId}` }, e.name || e.examId),
            localTime(e.startsAt), e.students, admission(e), readiness(e.readiness),
          ],
        }))) : h('p', {}, t('overview.noExams')));
      // The waiting rooms of the upcoming exams that have one.
      const rooms = await Promise.all(next.filter((e) => e.queue)
        .map((e) => get(`/api/vdi/exams/${encodeURIComponent(e.examId)}/queue`)));
      const forming = rooms.filter((q) => q.queued > 0);
      refreshRegion(queues, forming.length
        ? table([[t('col.exam')], [t('exam.queued'), 'num'], [t('exam.placedFromQueue'), 'num']],
          forming.map((q) => ({
            attrs: { 'data-queue': q.examId },
            cells: [h('a', { href: `#/exams/${encodeURIComponent(q.examId)}` }, q.examId), q.queued, q.placedTotal],
          })), { id: 'queues' })
        : h('p', { class: 'hint' }, t('overview.queuesNone')));
    } catch (e) {
      notice('error', e.message);
    }
    const last = live.lastReconcile();
    refreshRegion(reconcile, last ? report(last) : h('p', { class: 'hint' }, t('overview.noReconcile')));
    const seen = live.recentEvents().slice(0, 10);
    refreshRegion(events, seen.length
      ? h('ul', { id: 'recent-events' }, seen.map((e) => h('li', {},
        h('time', { datetime: new Date(e.seenAt).toISOString() }, localTime(e.seenAt)), ' ',
        badge(e.name, 'muted'), ' ', live.describe(e.name, e.data))))
      : h('p', { class: 'hint' }, t('overview.noEvents')));
  }

  refresh();
  return { refresh };
}

/** A capacity request's state as a badge: requested, joined, missing… */
const CAPACITY_TONES = {
  pending: 'warn', requested: 'warn', joined: 'ok', missing: 'bad', releasing: 'muted', released: 'muted',
};

/**
 * The capacity asked of the scale hook and not yet given back: per request
 * its exams, slots, deadline, state ("capacity requested / joined /
 * missing") and the workers the hook named.
 */
async function refreshCapacity(into) {
  try {
    const { requests } = await get('/api/vdi/capacity-requests');
    const open = requests.filter((r) => r.state !== 'released');
    refreshRegion(into, open.length
      ? table([[t('col.exam')], [t('capacity.slots'), 'num'], [t('capacity.deadline')], [t('col.status')], [t('capacity.workers')]],
        open.map((r) => ({
          attrs: { 'data-capacity': r.requestId, 'data-state': r.state },
          cells: [
            h('span', {}, r.examIds.map((id, i) => [i ? ', ' : '',
              h('a', { href: `#/exams/${encodeURIComponent(id)}` }, id)])),
            r.slots, localTime(r.deadline),
            badge(t(`capacity.${r.state}`), CAPACITY_TONES[r.state] || 'muted',
              r.lastError ? { title: r.lastError } : {}),
            r.workers.length ? r.workers.join(', ') : '—',
          ],
        })), { id: 'capacity-requests' })
      : h('p', { class: 'hint' }, t('overview.capacityNone')));
  } catch (e) {
    refreshRegion(into, h('p', { class: 'hint' }, e.message));
  }
}

/**
 * The store this control plane uses and, where it follows a primary
 * (Redis with Sentinel, PostgreSQL with standbys), the server it writes to
 * now; or that the store does not answer.
 */
async function refreshStore(into) {
  try {
    const ready = await get('/readyz');
    into.dataset.primary = ready.primary || '';
    refreshRegion(into, h('span', {},
      badge(t(`store.${ready.store}`), 'ok'),
      ready.primary ? [' ', t('overview.primary', { primary: ready.primary })] : []));
  } catch (e) {
    into.dataset.primary = '';
    refreshRegion(into, h('span', {}, badge(t('overview.storeDown'), 'bad'), ' ', e.message));
  }
}
