// One exam: its figures, its rehearsal's go / no-go report (with Run and
// Re-check), its students' end times and the Extend form,
// its students' lost time (the disruption ledger, with a grant button),
// prewarm readiness (in total and per worker), the allocations of the
// answering replica, the waiting room, its paced starts (students
// starting, the wait, each worker's start rate), and Prewarm.
import { h, replace, table } from '../dom.js';
import { t } from '../i18n.js';
import { get, seg } from '../api.js';
import { localTime, num } from '../format.js';
import { notice, refreshRegion } from '../ui.js';
import { admission, prewarmForm, readiness } from './exam_parts.js';
import { networkPanel } from './exam_network.js';
import { endsForm, endsPanel } from './exam_ends.js';
import { ledgerPanel } from './exam_ledger.js';
import { rehearsalPanel } from './exam_rehearsal.js';

/** Label/value pairs as a description list; `data-field` names each value. */
function facts(id, rows) {
  const dl = h('dl', { class: 'facts', id });
  for (const [label, value, key] of rows) {
    if (value === undefined) continue;
    dl.append(h('dt', {}, label), h('dd', { 'data-field': key }, value ?? '—'));
  }
  return dl;
}

function panel(id, title, ...body) {
  return h('section', { class: 'panel', 'aria-labelledby': id }, h('h2', { id }, title), ...body);
}

function ms(n) {
  return n === undefined || n === null ? '—' : `${num(n)} ms`;
}

function prewarmPanel(p) {
  const workers = Object.entries(p.workers || {});
  return panel('h-prewarm-figures', t('exam.prewarm'),
    facts('exam-prewarm', [
      [t('exam.readiness'), readiness(p), 'readiness'],
      [t('exam.prewarmTarget'), num(p.target), 'prewarmTarget'],
      [t('exam.prewarmReady'), num(p.ready), 'prewarmReady'],
      [t('exam.prewarmStarting'), num(p.starting), 'prewarmStarting'],
      [t('exam.prewarmFailed'), num(p.failed), 'prewarmFailed'],
      [t('exam.prewarmLost'), num(p.lost), 'prewarmLost'],
    ]),
    workers.length ? table(
      [[t('col.worker')], [t('exam.prewarmReady'), 'num'], [t('exam.prewarmStarting'), 'num'],
        [t('exam.prewarmFailed'), 'num'], [t('col.live')], [t('exam.readiness'), 'num']],
      workers.map(([code, w]) => ({
        attrs: { 'data-worker': code },
        cells: [code, num(w.ready), num(w.starting), num(w.failed),
          w.live ? t('yes') : t('no'), `${num(w.readinessPercent)} %`],
      })), { id: 'exam-prewarm-workers' }) : null);
}

function waitingRoom(queue) {
  const summary = facts('exam-queue-facts', [
    [t('exam.queued'), num(queue.queued), 'queued'],
    [t('exam.placedFromQueue'), num(queue.placedTotal), 'placedFromQueue'],
    [t('exam.abandoned'), num(queue.abandonedTotal), 'abandonedFromQueue'],
  ]);
  const list = queue.waiting.length ? table(
    [[t('col.position'), 'num'], [t('col.student')], [t('col.waiting'), 'num'], [t('col.beingPlaced')]],
    queue.waiting.map((w) => ({
      attrs: { 'data-user': w.userId },
      cells: [num(w.position), w.userId, `${num(w.waitingSec)} s`, w.beingPlaced ? t('yes') : ''],
    })), { id: 'exam-queue' }) : h('p', { class: 'hint', id: 'exam-queue-empty' }, t('exam.queueEmpty'));
  return panel('h-waiting-room', t('exam.waitingRoom'), summary, list);
}

function seconds(n) {
  return `${num(Math.round(n * 10) / 10)} s`;
}

/** The exam's starts: students starting, the wait p50/p95, and each of its workers' start pacing. */
function startsPanel(starts) {
  const summary = facts('exam-starts-facts', [
    [t('exam.starting'), num(starts.starting), 'starting'],
    [t('exam.started'), num(starts.placed), 'started'],
    [t('exam.startWaitP50'), seconds(starts.waitP50Sec), 'startWaitP50'],
    [t('exam.startWaitP95'), seconds(starts.waitP95Sec), 'startWaitP95'],
  ]);
  const list = starts.workers.length ? table(
    [[t('col.worker')], [t('exam.startLimit'), 'num'], [t('exam.startsInFlight'), 'num'],
      [t('exam.startsWaiting'), 'num'], [t('exam.startP95'), 'num'], [t('exam.startRate'), 'num']],
    starts.workers.map((w) => ({
      attrs: { 'data-worker': w.code },
      cells: [w.code, `${num(w.startLimit)} / ${num(w.maxConcurrentStarts)}`, num(w.startsInFlight),
        num(w.startsWaiting), ms(w.startP95Ms), `${num(Math.round(w.startsPerSec * 100) / 100)}/s`],
    })), { id: 'exam-start-workers' }) : h('p', { class: 'hint', id: 'exam-starts-empty' }, t('exam.startsEmpty'));
  return panel('h-starts', t('exam.starts'), summary, list, h('p', { class: 'hint' }, t('exam.startsNote')));
}

/** Mounts exam `id`'s page in `main`. */
export function mount(main, id) {
  const head = h('div', { id: 'exam-detail' }, t('loading'));
  const ends = endsForm(id, () => refresh());
  replace(main,
    h('p', {}, h('a', { href: '#/exams' }, `← ${t('exam.back')}`)),
    h('h1', {}, t('exam.title', { id })),
    head,
    ends,
    prewarmForm(id));

  async function refresh() {
    try {
      const [exam, queue, starts, ledger, rehearsal] = await Promise.all([
        get(`/api/vdi/exams/${seg(id)}`),
        get(`/api/vdi/exams/${seg(id)}/queue`),
        get(`/api/vdi/exams/${seg(id)}/starts`),
        get(`/api/vdi/exams/${seg(id)}/disruptions`),
        get(`/api/vdi/exams/${seg(id)}/rehearsal`),
      ]);
      const f = exam.figures;
      const a = f.allocations || {};
      const general = facts('exam-facts', [
        [t('book.name'), exam.name, 'name'],
        [t('col.start'), localTime(exam.startsAt), 'startsAt'],
        [t('col.end'), localTime(exam.endsAt), 'endsAt'],
        [t('col.fits'), admission(exam), 'fits'],
        ['', exam.shortfall
          ? t('exam.shortfall', { n: exam.shortfall.shortfall, t: localTime(exam.shortfall.peakAt) })
          : undefined, 'shortfall'],
        ['', t('exam.window', { from: localTime(exam.reservedFrom), to: localTime(exam.reservedUntil) }), 'window'],
        [t('exam.bookedStudents'), num(f.bookedStudents), 'bookedStudents'],
        [t('exam.reservedCapacity'), num(f.reservedCapacity), 'reservedCapacity'],
        [t('exam.matchingSlots'), num(f.matchingSlots), 'matchingSlots'],
        [t('exam.sessionsInUse'), num(f.sessionsInUse), 'sessionsInUse'],
        [t('exam.placed'), num(a.placed), 'placed'],
        [t('exam.refused'), num(a.refused), 'refused'],
        [t('exam.ttdP50'), ms(a.timeToDesktopP50Ms), 'timeToDesktopP50'],
        [t('exam.ttdP95'), ms(a.timeToDesktopP95Ms), 'timeToDesktopP95'],
      ]);
      const byWorker = Object.entries(f.sessionsByWorker);
      refreshRegion(head, h('div', {},
        h('div', { class: 'panel' }, general, h('p', { class: 'hint' }, t('exam.allocationsNote'))),
        rehearsalPanel(id, rehearsal, () => refresh()),
        endsPanel(exam, ends),
        ledgerPanel(id, ledger, () => refresh()),
        networkPanel(exam.networkPolicy),
        prewarmPanel(f.prewarm || exam.readiness || {}),
        waitingRoom(queue),
        startsPanel(starts),
        panel('h-by-worker', t('exam.byWorker'), byWorker.length
          ? table([[t('col.worker')], [t('col.sessions'), 'num']], byWorker.map(([w, n]) => ({ cells: [w, num(n)] })))
          : h('p', { class: 'hint' }, '0'))));
    } catch (e) {
      notice('error', e.message);
    }
  }

  refresh();
  return { refresh };
}
