// Audit and events: who did what (ADMIN only, as the route table says), a
// page at a time (a rehearsal's entry in words: its verdict and the workers
// left out), webhook deliveries (ADMIN, deliveries.js), the live
// events, newest first, and a download of what the page shows.
import { h, replace, table, badge } from '../dom.js';
import { t } from '../i18n.js';
import { get, isAdmin } from '../api.js';
import { localTime } from '../format.js';
import * as live from '../live.js';
import { deliveriesPanel } from './deliveries.js';
import { rehearsalAudit } from './exam_rehearsal.js';
import { PAGE_SIZE, busy, lastPage, notice, pager, refreshRegion } from '../ui.js';

function detailText(detail) {
  if (!detail || typeof detail !== 'object') return detail ?? '';
  return Object.entries(detail).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(', ');
}

async function download() {
  const [summary, workers, exams] = await Promise.all([
    get('/api/vdi/workers/summary'), get('/api/vdi/workers'), get('/api/vdi/exams'),
  ]);
  const data = {
    exportedAt: new Date().toISOString(), summary, workers, exams,
    audit: isAdmin() ? await get('/api/vdi/audit?limit=1000') : null,
    events: live.recentEvents(),
  };
  const blob = new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' });
  const link = h('a', { href: URL.createObjectURL(blob), download: `vdi-cluster-${data.exportedAt.replace(/[:.]/g, '-')}.json` });
  document.body.append(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  return data;
}

/** Mounts the audit trail and the events in `main`. */
export function mount(main) {
  const trail = h('div', { id: 'audit-table' }, isAdmin() ? t('loading') : t('audit.adminOnly'));
  const events = h('div', { id: 'events-list' });
  const deliveries = isAdmin() ? deliveriesPanel() : null;
  const exporter = h('button', { type: 'button', class: 'secondary', id: 'export' }, t('export'));
  exporter.addEventListener('click', () => busy(exporter, download));
  replace(main,
    h('h1', {}, t('audit.title')),
    h('div', { class: 'actions' }, exporter),
    h('section', { class: 'panel', 'aria-labelledby': 'h-trail' }, h('h2', { id: 'h-trail' }, t('audit.trail')), trail),
    deliveries && deliveries.panel,
    h('section', { class: 'panel', 'aria-labelledby': 'h-events' }, h('h2', { id: 'h-events' }, t('events.title')), events));

  let offset = 0;
  async function refresh() {
    if (isAdmin()) {
      try {
        const body = await get(`/api/vdi/audit?limit=${PAGE_SIZE}&offset=${offset}`);
        deliveries.refresh();
        if (!body.entries.length && offset > 0 && body.total > 0) {
          offset = lastPage(body.total);
          return refresh();
        }
        const pages = pager('audit-pager', body, body.entries.length, t('audit.trail'), (to) => {
          offset = to;
          refresh();
        });
        refreshRegion(trail, body.entries.length ? [table(
          [[t('col.time'), 'nowrap'], [t('col.actor'), 'nowrap'], [t('col.action'), 'nowrap'],
            [t('col.target')], [t('col.detail')]],
          body.entries.map((e) => ({
            attrs: { 'data-action': e.action, 'data-target': e.target },
            cells: [localTime(e.at), e.actor, e.action, e.target, rehearsalAudit(e) ?? detailText(e.detail)],
          })), { id: 'audit' }), pages] : h('p', {}, t('audit.none')));
      } catch (e) {
        notice('error', e.message);
      }
    }
    const seen = live.recentEvents();
    refreshRegion(events, seen.length ? table([[t('col.time'), 'nowrap'], [t('col.event')]],
      seen.map((e) => ({ cells: [localTime(e.seenAt), h('span', {}, badge(e.name, 'muted'), ' ', live.describe(e.name, e.data))] })))
      : h('p', { class: 'hint' }, t('events.none')));
    return undefined;
  }

  refresh();
  return { refresh };
}
