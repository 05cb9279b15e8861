// What the exam views share: upcoming exams, the admission badge,
// readiness, and the Prewarm form.
import { h, replace, field, badge } from '../dom.js';
import { t } from '../i18n.js';
import { change, seg } from '../api.js';
import { num } from '../format.js';
import { busy, notice } from '../ui.js';

/** Exams not yet over, soonest first. */
export function upcoming(exams) {
  const now = Date.now();
  return exams.filter((e) => new Date(e.endsAt).getTime() > now)
    .sort((a, b) => new Date(a.startsAt) - new Date(b.startsAt));
}

/**
 * An exam's admission as a badge: fits, fits with the workers the scale
 * hook is to start (`fits: "with scale-up"`), or at risk.
 */
export function admission(exam) {
  if (exam.fits === 'with scale-up') {
    return badge(t('fits.scaleUp'), 'warn', { 'data-fits': 'with scale-up', title: t('fits.scaleUpHint') });
  }
  return exam.fits && !exam.atRisk
    ? badge(t('fits.yes'), 'ok', { 'data-fits': 'true' })
    : badge(t('fits.risk'), 'bad', { 'data-fits': 'false' });
}

/**
 * An exam's prewarm readiness (`readiness` of the calendar, or the
 * `prewarm` figures of one exam): ready ÷ target as a percentage, the
 * counts in its title; a dash when nothing is to be prewarmed.
 */
export function readiness(r) {
  if (!r || !r.target) return h('span', { class: 'hint', 'data-readiness': 'none' }, '—');
  const tone = r.readinessPercent >= 100 ? 'ok' : (r.failed || r.lost ? 'bad' : 'warn');
  return badge(`${num(r.readinessPercent)} %`, tone, {
    'data-readiness': String(r.readinessPercent),
    title: t('exam.readinessOf', { ready: r.ready, target: r.target, starting: r.starting, failed: r.failed }),
  });
}

/** The Prewarm form, for the exam typed in or for `fixedExam`. */
export function prewarmForm(fixedExam) {
  const exam = h('input', { type: 'text', required: true, autocomplete: 'off', list: 'exam-ids' });
  const count = h('input', { type: 'number', required: true, min: 1, max: 80, step: 1, value: '3' });
  const out = h('div', { id: 'prewarm-result', role: 'status' });
  const submit = h('button', { type: 'submit', id: 'prewarm-submit' }, t('prewarm.submit'));
  if (fixedExam) exam.value = fixedExam;
  const form = h('form', { class: 'inline', id: 'prewarm-form' },
    fixedExam ? null : field('prewarm-exam', t('prewarm.exam'), exam),
    field('prewarm-count', t('prewarm.count'), count),
    submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const examId = exam.value.trim();
    const r = await busy(submit, () => change('POST', `/api/vdi/exams/${seg(examId)}/prewarm`, { count: Number(count.value) }));
    if (!r) return;
    notice('ok', t('prewarm.done', { exam: r.examId, started: r.started, requested: r.requested, planned: r.planned }));
    replace(out, h('ul', {},
      r.shares.map((s) => h('li', {}, `${s.worker}: ${s.count}`)),
      r.failures.map((f) => h('li', {}, t('prewarm.failed', f)))));
  });
  return h('section', { class: 'panel', 'aria-labelledby': 'h-prewarm' },
    h('h2', { id: 'h-prewarm' }, t('prewarm.title')), form, out);
}
