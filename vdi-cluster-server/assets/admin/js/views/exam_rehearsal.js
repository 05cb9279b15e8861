// One exam's rehearsal: the go / no-go verdict, whether the exam still
// fits without the failing workers, each worker's check (ok, slow, image
// missing, failed, with the reason), "Run the rehearsal" and, beside a
// failing worker, "Re-check" (both for admins).
import { badge, h, table } from '../dom.js';
import { t, addTexts } from '../i18n.js';
import { change, isAdmin, seg } from '../api.js';
import { localTime, num } from '../format.js';
import { busy, notice } from '../ui.js';

addTexts({
  en: {
    'rehearsal.title': 'Rehearsal',
    'rehearsal.verdict': 'Verdict',
    'rehearsal.verdict.go': 'Go',
    'rehearsal.verdict.noGo': 'No-go',
    'rehearsal.verdict.notRehearsed': 'Not rehearsed yet',
    'rehearsal.ranAt': 'Last run',
    'rehearsal.ranBy': '{t} by {by} (run {run})',
    'rehearsal.passed': 'Workers that passed',
    'rehearsal.fits': 'Fits without the failing workers',
    'rehearsal.missing': 'Students it could not place without them',
    'rehearsal.none': 'No worker has been checked. The rehearsal starts one test desktop of the exam on each eligible worker and stops it again.',
    'rehearsal.failingTitle': 'Workers left out of this exam',
    'rehearsal.allTitle': 'Every worker checked',
    'rehearsal.outcome': 'Result',
    'rehearsal.reason': 'Why',
    'rehearsal.startTime': 'Start time',
    'rehearsal.checkedAt': 'Checked',
    'rehearsal.outcome.ok': 'ok',
    'rehearsal.outcome.slow': 'slow',
    'rehearsal.outcome.imageMissing': 'image missing',
    'rehearsal.outcome.failed': 'failed',
    'rehearsal.run': 'Run the rehearsal',
    'rehearsal.recheck': 'Re-check',
    'rehearsal.recheckFor': 'Re-check worker {code}',
    'rehearsal.done': 'Rehearsal finished: {verdict}.',
    'rehearsal.audit.run': '{verdict}: run {run}, {workers} workers checked.',
    'rehearsal.audit.leftOut': 'Left out: {failing}.',
    'rehearsal.audit.recheck': 'Worker {worker} re-checked: {outcome}.',
    'rehearsal.audit.now': 'Verdict: {verdict}.',
  },
  vi: {
    'rehearsal.title': 'Diễn tập',
    'rehearsal.verdict': 'Kết luận',
    'rehearsal.verdict.go': 'Sẵn sàng',
    'rehearsal.verdict.noGo': 'Chưa sẵn sàng',
    'rehearsal.verdict.notRehearsed': 'Chưa diễn tập',
    'rehearsal.ranAt': 'Lần chạy gần nhất',
    'rehearsal.ranBy': '{t}, do {by} chạy (lần {run})',
    'rehearsal.passed': 'Số máy chủ đạt',
    'rehearsal.fits': 'Vẫn đủ chỗ khi bỏ các máy chủ lỗi',
    'rehearsal.missing': 'Số thí sinh không xếp được khi bỏ chúng',
    'rehearsal.none': 'Chưa máy chủ nào được kiểm tra. Buổi diễn tập khởi động một máy thi thử trên mỗi máy chủ phù hợp rồi tắt đi.',
    'rehearsal.failingTitle': 'Máy chủ bị loại khỏi kỳ thi này',
    'rehearsal.allTitle': 'Mọi máy chủ đã kiểm tra',
    'rehearsal.outcome': 'Kết quả',
    'rehearsal.reason': 'Lý do',
    'rehearsal.startTime': 'Thời gian khởi động',
    'rehearsal.checkedAt': 'Kiểm tra lúc',
    'rehearsal.outcome.ok': 'đạt',
    'rehearsal.outcome.slow': 'chậm',
    'rehearsal.outcome.imageMissing': 'thiếu image',
    'rehearsal.outcome.failed': 'lỗi',
    'rehearsal.run': 'Chạy diễn tập',
    'rehearsal.recheck': 'Kiểm tra lại',
    'rehearsal.recheckFor': 'Kiểm tra lại máy chủ {code}',
    'rehearsal.done': 'Diễn tập xong: {verdict}.',
    'rehearsal.audit.run': '{verdict}: lần {run}, đã kiểm tra {workers} máy chủ.',
    'rehearsal.audit.leftOut': 'Bị loại: {failing}.',
    'rehearsal.audit.recheck': 'Máy chủ {worker} được kiểm tra lại: {outcome}.',
    'rehearsal.audit.now': 'Kết luận: {verdict}.',
  },
});

const TONES = { ok: 'ok', slow: 'warn', imageMissing: 'bad', failed: 'bad' };
const VERDICT_TONES = { go: 'ok', noGo: 'bad', notRehearsed: 'muted' };

function outcome(c) {
  return badge(t(`rehearsal.outcome.${c.outcome}`), TONES[c.outcome] || 'muted', { 'data-outcome': c.outcome });
}

function startTime(c) {
  return c.startMs === undefined ? '—' : `${num(Math.round(c.startMs / 100) / 10)} s`;
}

/**
 * The audit trail's text of a rehearsal's entry (`rehearsal`: the verdict,
 * the run, the workers checked and those left out; `rehearsal-recheck`:
 * the worker, its outcome and the verdict), or null for another action.
 */
export function rehearsalAudit(entry) {
  const d = entry.detail && typeof entry.detail === 'object' ? entry.detail : {};
  const verdict = d.verdict ? t(`rehearsal.verdict.${d.verdict}`) : null;
  if (entry.action === 'rehearsal' && verdict) {
    const failing = (d.failing || [])
      .map((f) => `${f.worker} (${t(`rehearsal.outcome.${f.outcome}`)})`).join(', ');
    const run = t('rehearsal.audit.run', { verdict, run: num(d.run), workers: num(d.workers) });
    return failing ? `${run} ${t('rehearsal.audit.leftOut', { failing })}` : run;
  }
  if (entry.action === 'rehearsal-recheck' && verdict) {
    const checked = t('rehearsal.audit.recheck', { worker: d.worker, outcome: t(`rehearsal.outcome.${d.outcome}`) });
    return `${checked} ${t('rehearsal.audit.now', { verdict })}`;
  }
  return null;
}

/** Runs `path` (a run or a re-check) from `button`, then `after`. */
async function post(button, path, after) {
  const r = await busy(button, () => change('POST', path));
  if (!r) return;
  notice(r.verdict === 'go' ? 'ok' : 'error',
    t('rehearsal.done', { verdict: t(`rehearsal.verdict.${r.verdict}`) }));
  after();
}

function recheckButton(examId, code, after) {
  const button = h('button', {
    type: 'button', class: 'secondary', 'data-key': `recheck-${code}`,
    'aria-label': t('rehearsal.recheckFor', { code }),
  }, t('rehearsal.recheck'));
  button.addEventListener('click', () =>
    post(button, `/api/vdi/exams/${seg(examId)}/rehearsal/workers/${seg(code)}`, after));
  return button;
}

/** The exam's rehearsal `r` (GET …/rehearsal); `after` runs after a run or a re-check. */
export function rehearsalPanel(examId, r, after) {
  const admin = isAdmin();
  const facts = h('dl', { class: 'facts', id: 'exam-rehearsal-facts' },
    h('dt', {}, t('rehearsal.verdict')),
    h('dd', { 'data-field': 'verdict' },
      badge(t(`rehearsal.verdict.${r.verdict}`), VERDICT_TONES[r.verdict] || 'muted', { 'data-verdict': r.verdict })));
  if (r.run > 0) {
    facts.append(
      h('dt', {}, t('rehearsal.ranAt')),
      h('dd', { 'data-field': 'ranAt' }, t('rehearsal.ranBy', { t: localTime(r.updatedAt), by: r.by, run: num(r.run) })),
      h('dt', {}, t('rehearsal.passed')), h('dd', { 'data-field': 'passed' }, num(r.passed)),
      h('dt', {}, t('rehearsal.fits')), h('dd', { 'data-field': 'fitsWithoutFailing' }, r.fitsWithoutFailing ? t('yes') : t('no')),
      h('dt', {}, t('rehearsal.missing')), h('dd', { 'data-field': 'missing' }, num(r.missing)));
  }
  const failing = r.failing.length ? [
    h('h3', {}, t('rehearsal.failingTitle')),
    table(
      [[t('col.worker')], [t('rehearsal.outcome')], [t('rehearsal.reason')], ['']],
      r.failing.map((c) => ({
        attrs: { 'data-worker': c.worker },
        cells: [c.worker, outcome(c), { value: c.reason || '', attrs: { 'data-field': 'reason' } },
          admin ? recheckButton(examId, c.worker, after) : ''],
      })), { id: 'exam-rehearsal-failing' }),
  ] : [];
  const all = r.workers.length ? [
    h('h3', {}, t('rehearsal.allTitle')),
    table(
      [[t('col.worker')], [t('rehearsal.outcome')], [t('rehearsal.startTime'), 'num'], [t('rehearsal.checkedAt')]],
      r.workers.map((c) => ({
        attrs: { 'data-worker': c.worker },
        cells: [c.worker, outcome(c), startTime(c), localTime(c.checkedAt)],
      })), { id: 'exam-rehearsal-workers' }),
  ] : [h('p', { class: 'hint', id: 'exam-rehearsal-none' }, t('rehearsal.none'))];
  let run = null;
  if (admin) {
    run = h('button', { type: 'button', id: 'exam-rehearsal-run', 'data-key': 'rehearsal-run' }, t('rehearsal.run'));
    run.addEventListener('click', () => post(run, `/api/vdi/exams/${seg(examId)}/rehearsal`, after));
  }
  return h('section', { class: 'panel', 'aria-labelledby': 'h-rehearsal', id: 'exam-rehearsal' },
    h('h2', { id: 'h-rehearsal' }, t('rehearsal.title')), facts, ...failing, ...all,
    run ? h('p', {}, run) : null);
}
