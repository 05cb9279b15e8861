// A worker's maintenance: its next window for a length the operator picks,
// "Schedule drain" at that window's start (the leader drains it then,
// through the change freeze), and the drains scheduled and still open,
// each with Cancel.
import { h, table, field } from '../dom.js';
import { t } from '../i18n.js';
import { change, get } from '../api.js';
import { localTime } from '../format.js';
import { busy, notice, refreshRegion } from '../ui.js';

/** The lengths offered, in hours; the first window shown is for DEFAULT_HOURS. */
const HOURS = [1, 2, 4, 8];
const DEFAULT_HOURS = 2;

function nextWindow(answer, hours) {
  const next = answer.windows[0];
  if (!next) return h('p', { id: 'worker-window' }, t('window.none', { hours }));
  return h('p', { id: 'worker-window', 'data-start': next.start },
    t('window.next', { hours, start: localTime(next.start), latest: localTime(next.latestStart), end: localTime(next.end) }));
}

function scheduledList(drains, onCancel) {
  if (!drains.length) return h('p', { id: 'scheduled-none' }, t('scheduled.none'));
  return table([[t('scheduled.at')], [t('scheduled.by')], [t('scheduled.reason')], [t('scheduled.state')], [t('scheduled.action')]],
    drains.map((d) => {
      const cancel = h('button', { type: 'button', class: 'secondary', 'data-action': 'cancel-scheduled', 'data-key': `cancel-${d.id}`,
        'aria-label': t('scheduled.cancelLabel', { at: localTime(d.at) }) }, t('scheduled.cancel'));
      cancel.addEventListener('click', () => onCancel(cancel, d));
      return {
        attrs: { 'data-id': d.id, 'data-state': d.state },
        cells: [localTime(d.at), d.actor, d.reason, t(`scheduled.state.${d.state}`), d.state === 'pending' ? cancel : '—'],
      };
    }), { id: 'scheduled-drains', 'aria-label': t('scheduled.title') });
}

/** The maintenance panel of the worker at API `path`: `{ element, refresh }`. */
export function maintenancePanel(path) {
  let hours = DEFAULT_HOURS;
  const windowRegion = h('div', { id: 'worker-window-region' });
  const scheduled = h('div', { id: 'scheduled-region' });
  const length = h('select', {}, HOURS.map((n) => h('option', { value: n, selected: n === hours }, t('window.hours', { n }))));
  const reason = h('input', { type: 'text', required: true, maxlength: 500, autocomplete: 'off' });
  const submit = h('button', { type: 'submit', id: 'schedule-drain' }, t('scheduled.submit'));
  const form = h('form', { id: 'schedule-form', class: 'inline' },
    field('schedule-reason', t('scheduled.reasonLabel'), reason), submit);

  const refresh = async () => {
    const [windows, open] = await Promise.all([
      get(`${path}/maintenance-windows?duration=PT${hours}H`), get(`${path}/scheduled-drains`)]);
    refreshRegion(windowRegion, nextWindow(windows, hours));
    submit.disabled = windows.windows.length === 0;
    refreshRegion(scheduled, scheduledList(open.drains, cancel));
  };
  const cancel = async (button, drain) => {
    const answer = await busy(button, () => change('DELETE', `${path}/scheduled-drains/${encodeURIComponent(drain.id)}`));
    if (answer) {
      notice('ok', t('scheduled.cancelled', { at: localTime(answer.at) }));
      refresh().catch((e) => notice('error', e.message));
    }
  };
  length.addEventListener('change', () => {
    hours = Number(length.value);
    refresh().catch((e) => notice('error', e.message));
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const answer = await busy(submit, () => change('POST', `${path}/scheduled-drains`,
      { window: 'next', duration: `PT${hours}H`, reason: reason.value.trim() }));
    if (answer) {
      reason.value = '';
      notice('ok', t('scheduled.done', { at: localTime(answer.at) }));
      refresh().catch((err) => notice('error', err.message));
    }
  });

  const element = h('div', {},
    field('window-length', t('window.length'), length),
    windowRegion,
    h('p', { class: 'hint' }, t('scheduled.hint')),
    form,
    h('h3', { id: 'h-scheduled' }, t('scheduled.title')),
    scheduled);
  return { element, refresh };
}
