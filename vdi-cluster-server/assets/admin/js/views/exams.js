// Exams: the calendar and booking with the admission answer (and the
// suggested start when it does not fit); one exam's page is exam_detail.js.
import { h, replace, table, field } from '../dom.js';
import { t } from '../i18n.js';
import { change, get, isAdmin, seg } from '../api.js';
import { fromLocalInput, list, localTime, num, toLocalInput } from '../format.js';
import { figures, notice, refreshRegion, statusBadge } from '../ui.js';
import { admission, prewarmForm, readiness } from './exam_parts.js';
import { networkForm } from './exam_network.js';
import * as examDetail from './exam_detail.js';

/** Mounts the calendar, or exam `id`'s detail, in `main`. */
export function mount(main, id) {
  return id ? examDetail.mount(main, id) : calendar(main);
}

/**
 * The booking's optional settings — constraints, prewarm, teardown, the
 * waiting room — folded away; `read()` gives the body's fields for those
 * that are set (the API's defaults apply to the rest).
 */
function options() {
  const zone = h('input', { type: 'text', autocomplete: 'off' });
  const labels = h('input', { type: 'text', autocomplete: 'off', placeholder: 'gpu=nvidia, room=A1' });
  const caps = h('input', { type: 'text', autocomplete: 'off', placeholder: 'gpu' });
  const percent = h('input', { type: 'number', min: 0, max: 100, step: 1 });
  const lead = h('input', { type: 'number', min: 0, step: 1, placeholder: '15' });
  const teardown = h('input', { type: 'number', min: 0, step: 1, placeholder: '5' });
  const queue = h('input', { type: 'checkbox', checked: true });
  const element = h('details', { class: 'options', id: 'booking-options' },
    h('summary', {}, t('book.more')),
    h('div', { class: 'inline' },
      field('book-zone', t('book.zone'), zone), field('book-labels', t('book.labels'), labels),
      field('book-capabilities', t('book.capabilities'), caps)),
    h('div', { class: 'inline' },
      field('book-prewarm-percent', t('book.prewarmPercent'), percent),
      field('book-lead', t('book.leadMin'), lead), field('book-teardown', t('book.teardownMin'), teardown),
      h('div', { class: 'field check' }, queue, h('label', { for: 'book-queue' }, t('book.queue')))));
  queue.id = 'book-queue';

  function read() {
    const out = {};
    const constraints = {};
    if (zone.value.trim()) constraints.zone = zone.value.trim();
    const pairs = list(labels.value);
    if (pairs.length) {
      constraints.labels = {};
      for (const pair of pairs) {
        const at = pair.indexOf('=');
        if (at <= 0 || at === pair.length - 1) throw new Error(t('book.badLabel', { label: pair }));
        constraints.labels[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
      }
    }
    if (caps.value.trim()) constraints.capabilities = list(caps.value);
    if (Object.keys(constraints).length) out.constraints = constraints;
    const prewarm = {};
    if (percent.value !== '') prewarm.percent = Number(percent.value);
    if (lead.value !== '') prewarm.leadSec = Number(lead.value) * 60;
    if (Object.keys(prewarm).length) out.prewarm = prewarm;
    if (teardown.value !== '') out.teardownSec = Number(teardown.value) * 60;
    if (!queue.checked) out.queue = false;
    return out;
  }

  return { element, read };
}

function bookingForm(after) {
  const start = new Date(Date.now() + 2 * 3600 * 1000);
  start.setMinutes(0, 0, 0);
  const end = new Date(start.getTime() + 90 * 60 * 1000);
  const id = h('input', { type: 'text', required: true, autocomplete: 'off' });
  const name = h('input', { type: 'text', required: true, autocomplete: 'off' });
  const starts = h('input', { type: 'datetime-local', required: true, value: toLocalInput(start) });
  const ends = h('input', { type: 'datetime-local', required: true, value: toLocalInput(end) });
  const students = h('input', { type: 'number', required: true, min: 1, step: 1, value: '30' });
  const more = options();
  const network = networkForm();
  const submit = h('button', { type: 'submit', id: 'book-submit' }, t('book.submit'));
  const answer = h('div', { id: 'booking-answer', role: 'status' });
  const form = h('form', { id: 'booking-form' },
    h('div', { class: 'inline' },
      field('book-id', t('book.id'), id), field('book-name', t('book.name'), name),
      field('book-start', t('book.start'), starts), field('book-end', t('book.end'), ends),
      field('book-students', t('book.students'), students), submit),
    more.element, network.element);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    replace(answer);
    let extra;
    try {
      extra = { ...more.read(), ...network.read() };
    } catch (err) {
      notice('error', err.message);
      return;
    }
    const body = {
      examId: id.value.trim(), name: name.value.trim(), startsAt: fromLocalInput(starts.value),
      endsAt: fromLocalInput(ends.value), students: Number(students.value), ...extra,
    };
    submit.disabled = true;
    try {
      const exam = await change('POST', '/api/vdi/exams', body);
      notice('ok', t('book.ok', { id: exam.examId }));
      after();
    } catch (err) {
      notice('error', err.message);
      if (err.status === 409 && err.body && 'earliestStart' in err.body) refused(err.body);
    } finally {
      submit.disabled = false;
    }
  });

  function refused(body) {
    if (!body.earliestStart) {
      replace(answer, h('p', { id: 'suggested-start' }, t('book.noSuggest', { t: localTime(body.searchedUntil) })));
      return;
    }
    const use = h('button', { type: 'button', class: 'secondary', id: 'use-suggested' }, t('book.useSuggested'));
    use.addEventListener('click', () => {
      const length = new Date(fromLocalInput(ends.value)) - new Date(fromLocalInput(starts.value));
      const from = new Date(body.earliestStart);
      starts.value = toLocalInput(from);
      ends.value = toLocalInput(new Date(from.getTime() + length));
      starts.focus();
    });
    replace(answer, h('p', { id: 'suggested-start', 'data-earliest-start': body.earliestStart },
      t('book.suggest', { t: localTime(body.earliestStart) })), use);
  }

  return h('section', { class: 'panel', 'aria-labelledby': 'h-book' },
    h('h2', { id: 'h-book' }, t('book.title')), form, answer);
}

function calendar(main) {
  const figs = h('div', { id: 'exams-figures' }, t('loading'));
  const fleet = h('ul', { id: 'exams-workers', class: 'fleet', 'aria-label': t('nav.workers') });
  const rows = h('div', { id: 'exams-table' }, t('loading'));
  const ids = h('datalist', { id: 'exam-ids' });
  replace(main,
    h('h1', {}, t('exams.title')),
    figs,
    fleet,
    isAdmin() ? bookingForm(() => refresh()) : null,
    prewarmForm(null), ids,
    h('section', { class: 'panel', 'aria-labelledby': 'h-calendar' },
      h('h2', { id: 'h-calendar' }, t('exams.calendar')), rows));

  async function refresh() {
    try {
      const [summary, workers, body] = await Promise.all([
        get('/api/vdi/workers/summary'), get('/api/vdi/workers'), get('/api/vdi/exams'),
      ]);
      refreshRegion(figs, figures(summary));
      // The runbook's checklist, B: on Admin > Exams, each worker shows Healthy.
      refreshRegion(fleet, workers.workers.map((w) => h('li', { 'data-code': w.code },
        h('a', { href: `#/workers/${seg(w.code)}`, 'data-key': `fleet-${w.code}` }, w.code), ' ',
        statusBadge(w.status), ` ${num(w.usedSessions)} / ${num(w.maxSessions)}`)));
      replace(ids, body.exams.map((e) => h('option', { value: e.examId }, e.name)));
      refreshRegion(rows, body.exams.length ? table(
        [[t('col.exam')], [t('book.name')], [t('col.start')], [t('col.end')], [t('col.students'), 'num'],
          [t('col.fits')], [t('col.readiness')], [t('col.prewarm'), 'num']],
        body.exams.map((e) => ({
          attrs: { 'data-exam': e.examId },
          cells: [
            h('a', { href: `#/exams/${seg(e.examId)}`, 'data-key': `exam-${e.examId}` }, e.examId),
            e.name, localTime(e.startsAt), localTime(e.endsAt), num(e.students),
            admission(e), readiness(e.readiness), num(e.prewarmMachines),
          ],
        })), { id: 'exams' }) : h('p', {}, t('exams.none')));
    } catch (e) {
      notice('error', e.message);
    }
  }

  refresh();
  return { refresh };
}
