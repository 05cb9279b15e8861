// One exam's disruption ledger: every student who lost time (worker
// lost or restarted, moved, a start retried or slow), how much and why,
// the exam's total, median and largest lost time, the CSV export, and a
// "grant the lost time" button per student that extends the student's
// own end by their lost time (PATCH of the session, with a reason).
import { h, table } from '../dom.js';
import { t, addTexts } from '../i18n.js';
import { change, seg } from '../api.js';
import { localTime, num } from '../format.js';
import { busy, notice } from '../ui.js';

addTexts({
  en: {
    'ledger.title': 'Lost time',
    'ledger.none': 'No student has lost time.',
    'ledger.student': 'Student',
    'ledger.lost': 'Lost',
    'ledger.kinds': 'Why',
    'ledger.total': 'Total lost',
    'ledger.median': 'Median lost',
    'ledger.max': 'Most lost',
    'ledger.csv': 'Download as CSV',
    'ledger.grant': 'Grant the lost time',
    'ledger.grantFor': 'Grant the lost time to {user}',
    'ledger.reason': 'Lost time ({kinds})',
    'ledger.granted': '{user} now ends at {t}.',
    'ledger.kind.workerLost': 'worker lost',
    'ledger.kind.workerRestarted': 'worker restarted',
    'ledger.kind.startRetried': 'start retried',
    'ledger.kind.moved': 'moved',
    'ledger.kind.waitingRoom': 'waiting room',
    'ledger.kind.slowStart': 'slow start',
    'ledger.kind.refused': 'refused',
  },
  vi: {
    'ledger.title': 'Thời gian bị mất',
    'ledger.none': 'Chưa thí sinh nào bị mất thời gian.',
    'ledger.student': 'Thí sinh',
    'ledger.lost': 'Bị mất',
    'ledger.kinds': 'Lý do',
    'ledger.total': 'Tổng thời gian mất',
    'ledger.median': 'Trung vị',
    'ledger.max': 'Nhiều nhất',
    'ledger.csv': 'Tải về dạng CSV',
    'ledger.grant': 'Bù thời gian bị mất',
    'ledger.grantFor': 'Bù thời gian bị mất cho {user}',
    'ledger.reason': 'Bù thời gian bị mất ({kinds})',
    'ledger.granted': '{user} nay kết thúc lúc {t}.',
    'ledger.kind.workerLost': 'mất máy chủ',
    'ledger.kind.workerRestarted': 'máy chủ khởi động lại',
    'ledger.kind.startRetried': 'khởi động lại ở máy khác',
    'ledger.kind.moved': 'chuyển máy',
    'ledger.kind.waitingRoom': 'phòng chờ',
    'ledger.kind.slowStart': 'khởi động chậm',
    'ledger.kind.refused': 'bị từ chối',
  },
});

const secs = (n) => `${num(Math.round(n * 10) / 10)} s`;
const kinds = (s) => s.kinds.map((k) => t(`ledger.kind.${k}`)).join(', ');

/** The exam's ledger `ledger` (GET …/disruptions); `after` runs after a grant. */
export function ledgerPanel(examId, ledger, after) {
  const list = ledger.students.length ? table(
    [[t('ledger.student')], [t('ledger.lost'), 'num'], [t('ledger.kinds')], ['']],
    ledger.students.map((s) => ({
      attrs: { 'data-user': s.userId },
      cells: [
        s.userId,
        { value: secs(s.lostSec), attrs: { 'data-field': 'lostSec' } },
        { value: kinds(s), attrs: { 'data-field': 'kinds' } },
        grantButton(examId, s, after),
      ],
    })), { id: 'exam-ledger' }) : h('p', { class: 'hint', id: 'exam-ledger-none' }, t('ledger.none'));
  const figures = h('dl', { class: 'facts', id: 'exam-ledger-facts' },
    h('dt', {}, t('ledger.total')), h('dd', { 'data-field': 'totalLostSec' }, secs(ledger.totalLostSec)),
    h('dt', {}, t('ledger.median')), h('dd', { 'data-field': 'medianLostSec' }, secs(ledger.medianLostSec)),
    h('dt', {}, t('ledger.max')), h('dd', { 'data-field': 'maxLostSec' }, secs(ledger.maxLostSec)));
  const csv = h('a', {
    id: 'exam-ledger-csv', download: `disruptions-${examId}.csv`,
    href: `/api/vdi/exams/${seg(examId)}/disruptions?format=csv`,
  }, t('ledger.csv'));
  return h('section', { class: 'panel', 'aria-labelledby': 'h-ledger' },
    h('h2', { id: 'h-ledger' }, t('ledger.title')), figures, list, h('p', {}, csv));
}

/** Extends student `s`'s own end by their lost time (whole seconds, rounded up). */
function grantButton(examId, s, after) {
  const button = h('button', {
    type: 'button', class: 'secondary', 'data-key': `grant-${s.userId}`,
    'aria-label': t('ledger.grantFor', { user: s.userId }),
  }, t('ledger.grant'));
  button.addEventListener('click', async () => {
    const body = { extendSec: Math.max(1, Math.ceil(s.lostSec)), reason: t('ledger.reason', { kinds: kinds(s) }) };
    const r = await busy(button, () => change('PATCH', `/api/vdi/sessions/${seg(examId)}/${seg(s.userId)}`, body));
    if (!r) return;
    notice('ok', t('ledger.granted', { user: r.userId, t: localTime(r.endsAt) }));
    after();
  });
  return button;
}
