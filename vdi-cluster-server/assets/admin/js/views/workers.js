// Workers: the filtered table, a page at a time, one worker's detail with its sessions and
// what blocks its drain, the admin actions (a drain the change freeze
// refuses shows the exams and when it is safe, and may be forced with a
// reason), its maintenance (worker_schedule.js), and Reconcile now.
import { h, replace, table, field } from '../dom.js';
import { t } from '../i18n.js';
import { change, get, seg } from '../api.js';
import { age, localTime, num } from '../format.js';
import * as live from '../live.js';
import { PAGE_SIZE, busy, lastPage, notice, pager, refreshRegion, report, statusBadge } from '../ui.js';
import { maintenancePanel } from './worker_schedule.js';

const STATUSES = ['active', 'pending', 'draining', 'drained', 'disabled', 'unhealthy', 'unreachable', 'offline'];
const filters = { status: '', zone: '', label: '' };
let offset = 0;

/** Mounts the workers list, or worker `code`'s detail, in `main`. */
export function mount(main, code) {
  return code ? detail(main, code) : list(main);
}

/** The "Reconcile now" button and the region its report goes to. */
export function reconcileControl(after) {
  const out = h('div', { id: 'reconcile-result', role: 'status' });
  const button = h('button', { type: 'button', id: 'reconcile-now' }, t('reconcile.button'));
  button.addEventListener('click', async () => {
    const r = await busy(button, () => change('POST', '/api/vdi/workers/reconcile'));
    if (r) {
      live.noteReconcile(r);
      notice('ok', t('reconcile.done'));
      replace(out, report(r));
      if (after) after();
    }
  });
  return h('div', {}, h('div', { class: 'actions' }, button), out);
}

function list(main) {
  const rows = h('div', { id: 'workers-table' }, t('loading'));
  const count = h('p', { id: 'workers-count', class: 'hint', 'aria-live': 'polite' });
  const status = h('select', {}, h('option', { value: '' }, t('filter.any')),
    STATUSES.map((s) => h('option', { value: s }, t(`status.${s}`))));
  const zone = h('input', { type: 'text', autocomplete: 'off' });
  const label = h('input', { type: 'text', autocomplete: 'off', placeholder: 'key:value' });
  status.value = filters.status;
  zone.value = filters.zone;
  label.value = filters.label;
  const form = h('form', { class: 'filters panel', id: 'worker-filters', role: 'search' },
    field('filter-status', t('filter.status'), status),
    field('filter-zone', t('filter.zone'), zone),
    field('filter-label', t('filter.label'), label),
    h('button', { type: 'submit' }, t('filter.apply')),
    h('button', { type: 'button', class: 'secondary', id: 'filter-clear' }, t('filter.clear')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    Object.assign(filters, { status: status.value, zone: zone.value.trim(), label: label.value.trim() });
    offset = 0;
    refresh();
  });
  form.querySelector('#filter-clear').addEventListener('click', () => {
    Object.assign(filters, { status: '', zone: '', label: '' });
    status.value = '';
    zone.value = '';
    label.value = '';
    offset = 0;
    refresh();
  });
  replace(main, h('h1', {}, t('workers.title')), reconcileControl(() => refresh()), form, count, rows);

  async function refresh() {
    const query = new URLSearchParams(Object.entries(filters).filter(([, v]) => v));
    query.set('limit', PAGE_SIZE);
    query.set('offset', offset);
    try {
      const body = await get(`/api/vdi/workers?${query}`);
      if (!body.workers.length && offset > 0 && body.total > 0) {
        offset = lastPage(body.total);
        return refresh();
      }
      count.textContent = t('workers.count', { n: body.total });
      const pages = pager('workers-pager', body, body.workers.length, t('workers.title'), (to) => {
        offset = to;
        refresh();
      });
      refreshRegion(rows, body.workers.length ? [table(
        [[t('col.code')], [t('col.zone')], [t('col.status')], [t('col.slots'), 'num'], [t('col.heartbeat')], [t('col.drain')]],
        body.workers.map((w) => ({
          attrs: { 'data-code': w.code, 'data-status': w.status },
          cells: [
            h('a', { href: `#/workers/${seg(w.code)}`, 'data-key': `worker-${w.code}` }, w.code),
            w.zone, statusBadge(w.status),
            `${num(w.usedSessions)} / ${num(w.maxSessions)}`,
            age(w.lastHeartbeatAgeSec),
            { value: h('code', {}, w.drainStatus), attrs: { 'data-field': 'drainStatus' } },
          ],
        })), { id: 'workers' }), pages] : h('p', {}, t('workers.none')));
    } catch (e) {
      notice('error', e.message);
    }
    return undefined;
  }

  refresh();
  return { refresh };
}

function facts(w) {
  const dl = h('dl', { class: 'facts', id: 'worker-facts' });
  const add = (label, value, key) => dl.append(h('dt', {}, label), h('dd', { 'data-field': key }, value ?? '—'));
  add(t('col.status'), statusBadge(w.status), 'status');
  add(t('col.drain'), h('code', {}, w.drainStatus), 'drainStatus');
  add(t('detail.reason'), w.reason, 'reason');
  add(t('detail.name'), w.name, 'name');
  add(t('col.zone'), w.zone, 'zone');
  add(t('detail.api'), w.apiBaseUrl, 'apiBaseUrl');
  add(t('detail.availability'), w.availability, 'availability');
  add(t('col.slots'), `${num(w.usedSessions)} / ${num(w.maxSessions)}`, 'slots');
  add(t('col.heartbeat'), w.lastHeartbeatAt ? `${localTime(w.lastHeartbeatAt)} (${age(w.lastHeartbeatAgeSec)})` : t('never'), 'heartbeat');
  add(t('detail.capacity'), t('detail.capacityText', {
    cpu: w.totalCpuCores ?? '—', mem: w.totalMemoryMb ?? '—', rcpu: w.reservedCpuCores ?? '—',
    rmem: w.reservedMemoryMb ?? '—', vcpu: w.vmCpuCores ?? '—', vmem: w.vmMemoryMb ?? '—',
  }), 'capacity');
  const pct = (v) => (v === null || v === undefined ? '—' : `${num(v)} %`);
  add(t('detail.usage'), `${pct(w.cpuPercent)} / ${pct(w.memoryPercent)} / ${pct(w.diskPercent)}`, 'usage');
  for (const key of ['hostname', 'ipAddress', 'os', 'agentVersion', 'containerRuntime', 'nixVersion']) {
    add(t(`detail.${key}`), w[key], key);
  }
  const labels = Object.entries(w.labels || {}).map(([k, v]) => `${k}:${v}`).join(', ');
  add(t('detail.labels'), labels || '—', 'labels');
  if (w.warning) add(t('detail.warning'), w.warning, 'warning');
  return dl;
}

function sessionsByExam(sessions) {
  if (!sessions.length) return h('p', {}, t('detail.noSessions'));
  const byExam = new Map();
  for (const s of sessions) {
    if (!byExam.has(s.examId)) byExam.set(s.examId, []);
    byExam.get(s.examId).push(s);
  }
  return table([[t('col.exam')], [t('col.sessions'), 'num'], [t('col.user')]],
    [...byExam].map(([exam, list]) => ({
      attrs: { 'data-exam': exam },
      cells: [exam, list.length, list.map((s) => `${s.userId} (${s.state})`).join(', ')],
    })), { id: 'worker-sessions' });
}

function blockers(info) {
  if (info.drainStatus === 'none') return h('p', {}, t('detail.notDraining'));
  if (info.drainStatus === 'drained') return h('p', {}, t('detail.drained'));
  const lines = Object.entries(info.blocking).map(([exam, users]) => h('li', {}, `${exam}: ${users.join(', ')}`));
  return h('div', {},
    h('p', {}, t('detail.blockersCounts', { active: info.reportedActive, dispatched: info.dispatched })),
    lines.length ? h('ul', {}, lines) : null);
}

function freezeRefusal(body, onForce, forcing = { id: 'force-drain', label: t('act.forceDrain') }) {
  const exams = body.exams.map((e) => h('li', { 'data-exam': e.examId },
    t('freeze.exam', { exam: `${e.name} (${e.examId})`, n: e.shortfall - e.shortfallBefore })));
  const force = h('button', { type: 'button', class: 'danger', id: forcing.id, 'data-action': forcing.id }, forcing.label);
  force.addEventListener('click', onForce);
  return h('div', { role: 'alert', 'data-safe-from': body.safeFrom },
    h('p', {}, t('freeze.refused', { safe: localTime(body.safeFrom) })),
    h('ul', {}, exams),
    h('div', { class: 'actions' }, force));
}

function forceDialog(code, texts, confirmed) {
  const reason = h('textarea', { required: true, maxlength: 500, rows: 3 });
  const confirm = h('button', { type: 'submit', class: 'danger', id: 'force-confirm' }, texts.confirm);
  const cancel = h('button', { type: 'button', class: 'secondary' }, t('cancel'));
  const problem = h('p', { role: 'alert', id: 'force-error', class: 'notice', 'data-kind': 'error', hidden: true });
  const dialog = h('dialog', { 'aria-labelledby': 'force-title', id: 'force-dialog' },
    h('form', {},
      h('h2', { id: 'force-title' }, texts.title),
      h('p', {}, texts.warn),
      field('force-reason', t('force.reason'), reason),
      problem,
      h('div', { class: 'actions' }, cancel, confirm)));
  cancel.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => dialog.remove());
  dialog.querySelector('form').addEventListener('submit', async (e) => {
    e.preventDefault();
    confirm.disabled = true;
    try {
      await confirmed(reason.value.trim());
      dialog.close();
    } catch (err) {
      problem.hidden = false;
      problem.textContent = err.message;
    } finally {
      confirm.disabled = false;
    }
  });
  document.body.append(dialog);
  dialog.showModal();
  reason.focus();
}

function detail(main, code) {
  const path = `/api/vdi/workers/${seg(code)}`;
  const head = h('div', { id: 'worker-detail' }, t('loading'));
  const sessions = h('div', { id: 'worker-sessions-region' });
  const drain = h('div', { id: 'worker-drain' });
  const maintenance = maintenancePanel(path);
  const freeze = h('div', { id: 'worker-freeze' });
  let current = null;

  const act = (id, label, cls, run) => {
    const button = h('button', { type: 'button', id, class: cls, 'data-action': id }, label);
    button.addEventListener('click', async () => {
      const answer = await busy(button, run);
      if (answer) {
        notice('ok', answer.message);
        refresh();
      }
    });
    return button;
  };
  const forceDrain = () => forceDialog(code, {
    title: t('forceDrain.title', { code }), warn: t('forceDrain.warn'), confirm: t('act.forceDrainConfirm'),
  }, async (reason) => {
    const answer = await change('POST', `${path}/drain`, { force: true, reason });
    replace(freeze);
    notice('ok', answer.message);
    refresh();
    return answer;
  });
  const drainOrRefusal = async () => {
    try {
      const answer = await change('PATCH', path, { isDraining: true });
      replace(freeze);
      return answer;
    } catch (e) {
      if (e.status === 409 && e.body && e.body.safeFrom) refreshRegion(freeze, freezeRefusal(e.body, forceDrain));
      throw e;
    }
  };
  // An agent upgrade restarts the agent: the page asks the same clearance
  // as `install-worker.sh --upgrade` does before it replaces the agent.
  const cleared = () => ({ message: t('upgrade.cleared', { code }) });
  const forceUpgrade = () => forceDialog(code, {
    title: t('forceUpgrade.title', { code }), warn: t('forceUpgrade.warn'), confirm: t('act.forceUpgradeConfirm'),
  }, async (reason) => {
    await change('POST', `${path}/upgrade?force=true&reason=${encodeURIComponent(reason)}`);
    replace(freeze);
    notice('ok', cleared().message);
    refresh();
    return cleared();
  });
  const upgradeOrRefusal = async () => {
    try {
      await change('POST', `${path}/upgrade`);
      replace(freeze);
      return cleared();
    } catch (e) {
      if (e.status === 409 && e.body && e.body.safeFrom) {
        refreshRegion(freeze, freezeRefusal(e.body, forceUpgrade, { id: 'force-upgrade', label: t('act.forceUpgrade') }));
      }
      throw e;
    }
  };
  const actions = h('div', { class: 'actions', id: 'worker-actions' },
    act('drain', t('act.drain'), '', drainOrRefusal),
    act('upgrade', t('act.upgrade'), 'secondary', upgradeOrRefusal),
    act('activate', t('act.activate'), 'secondary', () => change('POST', `${path}/activate`)),
    act('disable', t('act.disable'), 'secondary', () => change('PATCH', path, { isEnabled: false })));
  const force = h('button', { type: 'button', class: 'danger', id: 'force-disable', 'data-action': 'force-disable' }, t('act.force'));
  force.addEventListener('click', () => forceDialog(code, {
    title: t('force.title', { code }),
    warn: t('force.warn', { n: current ? current.usedSessions : 0 }),
    confirm: t('force.confirm'),
  }, async (reason) => {
    const answer = await change('PATCH', path, { isEnabled: false, force: true, reason });
    notice('ok', answer.message);
    refresh();
    return answer;
  }));
  actions.append(force);

  replace(main,
    h('p', {}, h('a', { href: '#/workers' }, `← ${t('detail.back')}`)),
    h('h1', {}, t('detail.title', { code })),
    head,
    h('section', { class: 'panel', 'aria-labelledby': 'h-actions' },
      h('h2', { id: 'h-actions' }, t('detail.actions')),
      h('p', { class: 'hint' }, t('detail.actionsHint')), actions, freeze),
    h('section', { class: 'panel', 'aria-labelledby': 'h-window' }, h('h2', { id: 'h-window' }, t('window.title')), maintenance.element),
    h('section', { class: 'panel', 'aria-labelledby': 'h-drain' }, h('h2', { id: 'h-drain' }, t('detail.blockers')), drain),
    h('section', { class: 'panel', 'aria-labelledby': 'h-sessions' }, h('h2', { id: 'h-sessions' }, t('detail.sessions')), sessions));

  async function refresh() {
    try {
      const [w, s, d] = await Promise.all([get(path), get(`${path}/sessions`), get(`${path}/drain`),
        maintenance.refresh()]);
      current = w;
      refreshRegion(head, h('div', { class: 'panel' }, facts(w)));
      refreshRegion(sessions, sessionsByExam(s.sessions));
      refreshRegion(drain, blockers(d));
    } catch (e) {
      notice('error', e.message);
    }
  }

  refresh();
  return { refresh };
}
