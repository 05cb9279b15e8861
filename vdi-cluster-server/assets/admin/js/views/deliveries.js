// Webhook deliveries (ADMIN): pick an endpoint, read its deliveries newest
// first, a page at a time, each with its state and its attempts.
import { h, field, table, badge } from '../dom.js';
import { t } from '../i18n.js';
import { get, seg } from '../api.js';
import { num } from '../format.js';
import { PAGE_SIZE, lastPage, notice, pager, refreshRegion } from '../ui.js';

const TONES = { delivered: 'ok', pending: 'muted', leased: 'muted', failed: 'bad' };

/** The deliveries panel; `refresh()` reads the endpoints and the page shown. */
export function deliveriesPanel() {
  const endpoint = h('select', {});
  const rows = h('div', { id: 'deliveries-table' });
  const panel = h('section', { class: 'panel', 'aria-labelledby': 'h-deliveries' },
    h('h2', { id: 'h-deliveries' }, t('deliveries.title')),
    h('div', { class: 'filters' }, field('deliveries-endpoint', t('deliveries.endpoint'), endpoint)),
    rows);
  let offset = 0;
  endpoint.addEventListener('change', () => {
    offset = 0;
    refresh();
  });

  async function endpoints() {
    const { webhooks } = await get('/api/vdi/webhooks');
    const chosen = endpoint.value;
    refreshRegion(endpoint, webhooks.map((w) => h('option', { value: w.id }, `${w.url} (${w.id})`)));
    if (webhooks.some((w) => w.id === chosen)) endpoint.value = chosen;
    return webhooks.length > 0;
  }

  async function refresh() {
    try {
      if (!(await endpoints())) {
        refreshRegion(rows, h('p', { class: 'hint' }, t('deliveries.noEndpoint')));
        return undefined;
      }
      const body = await get(`/api/vdi/webhooks/${seg(endpoint.value)}/deliveries?limit=${PAGE_SIZE}&offset=${offset}`);
      if (!body.deliveries.length && offset > 0 && body.total > 0) {
        offset = lastPage(body.total);
        return refresh();
      }
      const pages = pager('deliveries-pager', body, body.deliveries.length, t('deliveries.title'), (to) => {
        offset = to;
        refresh();
      });
      refreshRegion(rows, body.deliveries.length ? [table(
        [[t('col.time'), 'nowrap'], [t('col.event')], [t('deliveries.state')], [t('deliveries.attempts'), 'num'], [t('deliveries.id')]],
        body.deliveries.map((d) => ({
          attrs: { 'data-delivery': d.id },
          cells: [d.createdAt, d.type, badge(d.state, TONES[d.state] || 'muted'), num(d.attempts.length), h('code', {}, d.id)],
        })), { id: 'deliveries' }), pages] : h('p', {}, t('deliveries.none')));
    } catch (e) {
      notice('error', e.message);
    }
    return undefined;
  }

  return { panel, refresh };
}
