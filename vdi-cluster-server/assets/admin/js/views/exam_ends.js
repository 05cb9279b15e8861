// One exam's students with their own end: the exam's end, each extended
// student's end and extra time, the seats booked for students not named
// yet, and the Extend form (a student, minutes and a reason). A refusal
// says by how much it falls short and how much more would fit; "force"
// grants it anyway, with the reason on record.
import { h, table, field } from '../dom.js';
import { t, addTexts } from '../i18n.js';
import { change, seg } from '../api.js';
import { localTime, num } from '../format.js';
import { busy, notice } from '../ui.js';

addTexts({
  en: {
    'ends.title': 'End times',
    'ends.everyone': 'Every other student ends with the exam, at {t}; the desktop is released after the grace.',
    'ends.none': 'No student has an end of their own.',
    'ends.student': 'Student',
    'ends.endsAt': 'Own end',
    'ends.extra': 'Extra time',
    'ends.minutes': '{n} min',
    'ends.unnamed': 'Booked for students not named yet: {list}.',
    'ends.unnamedItem': '{count} at +{n} min',
    'ends.extend': 'Extend',
    'ends.extendFor': 'Extend {user}',
    'ends.formTitle': 'Give a student more time',
    'ends.user': 'Student id',
    'ends.addMinutes': 'Minutes to add',
    'ends.reason': 'Reason (kept in the audit trail)',
    'ends.force': 'Grant it even if it does not fit',
    'ends.submit': 'Extend',
    'ends.done': '{user} now ends at {t}.',
    'ends.refused': 'Does not fit: {n} student(s) short at {t}. At most {more} more minute(s) fit; tick “grant it even if it does not fit” to give it anyway.',
  },
  vi: {
    'ends.title': 'Giờ kết thúc',
    'ends.everyone': 'Các thí sinh khác kết thúc cùng kỳ thi, lúc {t}; máy thi được thu hồi sau thời gian ân hạn.',
    'ends.none': 'Chưa thí sinh nào có giờ kết thúc riêng.',
    'ends.student': 'Thí sinh',
    'ends.endsAt': 'Giờ kết thúc riêng',
    'ends.extra': 'Thời gian thêm',
    'ends.minutes': '{n} phút',
    'ends.unnamed': 'Đã đặt cho thí sinh chưa có tên: {list}.',
    'ends.unnamedItem': '{count} người thêm {n} phút',
    'ends.extend': 'Gia hạn',
    'ends.extendFor': 'Gia hạn cho {user}',
    'ends.formTitle': 'Cho thí sinh thêm thời gian',
    'ends.user': 'Mã thí sinh',
    'ends.addMinutes': 'Số phút thêm',
    'ends.reason': 'Lý do (lưu vào nhật ký kiểm tra)',
    'ends.force': 'Vẫn gia hạn dù không đủ chỗ',
    'ends.submit': 'Gia hạn',
    'ends.done': '{user} nay kết thúc lúc {t}.',
    'ends.refused': 'Không đủ chỗ: thiếu {n} chỗ lúc {t}. Chỉ còn thêm được tối đa {more} phút; chọn “vẫn gia hạn dù không đủ chỗ” để vẫn cho.',
  },
});

const minutes = (sec) => num(Math.round(sec / 60));

/** The table of the exam's students with their own end (refreshed with the page). */
export function endsPanel(exam, form) {
  const end = new Date(exam.endsAt).getTime();
  const named = exam.extensions || [];
  const unnamed = exam.extraTime || [];
  const list = named.length ? table(
    [[t('ends.student')], [t('ends.endsAt')], [t('ends.extra'), 'num'], ['']],
    named.map((s) => ({
      attrs: { 'data-user': s.userId },
      cells: [
        s.userId,
        { value: localTime(end + s.extraSec * 1000), attrs: { 'data-field': 'endsAt' } },
        t('ends.minutes', { n: minutes(s.extraSec) }),
        h('button', {
          type: 'button', class: 'secondary', 'data-key': `extend-${s.userId}`,
          'aria-label': t('ends.extendFor', { user: s.userId }),
          onclick: () => form.choose(s.userId),
        }, t('ends.extend')),
      ],
    })), { id: 'exam-ends' }) : h('p', { class: 'hint', id: 'exam-ends-none' }, t('ends.none'));
  const seats = unnamed.length ? h('p', { class: 'hint', id: 'exam-ends-unnamed' }, t('ends.unnamed', {
    list: unnamed.map((u) => t('ends.unnamedItem', { count: num(u.students), n: minutes(u.extraSec) })).join(', '),
  })) : null;
  return h('section', { class: 'panel', 'aria-labelledby': 'h-ends' },
    h('h2', { id: 'h-ends' }, t('ends.title')),
    h('p', { id: 'exam-ends-everyone' }, t('ends.everyone', { t: localTime(exam.endsAt) })),
    seats, list);
}

/** The Extend form of exam `id` (mounted once); `after` runs after a grant. */
export function endsForm(id, after) {
  const user = h('input', { type: 'text', required: true, autocomplete: 'off', maxlength: 128 });
  const add = h('input', { type: 'number', required: true, min: 1, max: 1440, step: 1, value: '10' });
  const reason = h('input', { type: 'text', required: true, maxlength: 500 });
  const force = h('input', { type: 'checkbox' });
  const submit = h('button', { type: 'submit', id: 'ends-submit' }, t('ends.submit'));
  const form = h('form', { class: 'inline', id: 'ends-form' },
    field('ends-user', t('ends.user'), user),
    field('ends-minutes', t('ends.addMinutes'), add),
    field('ends-reason', t('ends.reason'), reason),
    h('div', { class: 'field' }, h('label', { for: 'ends-force' }, force, ' ', t('ends.force'))),
    submit);
  force.id = 'ends-force';
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const who = user.value.trim();
    const body = { extendSec: Number(add.value) * 60, reason: reason.value.trim() };
    if (force.checked) body.force = true;
    const path = `/api/vdi/sessions/${seg(id)}/${seg(who)}`;
    const r = await busy(submit, async () => {
      try {
        return await change('PATCH', path, body);
      } catch (err) {
        if (err.status !== 409 || !err.body) throw err;
        notice('error', t('ends.refused', {
          n: num(err.body.shortfall), t: localTime(err.body.peakAt), more: minutes(err.body.fitsExtendSec),
        }));
        return undefined;
      }
    });
    if (!r) return;
    notice('ok', t('ends.done', { user: r.userId, t: localTime(r.endsAt) }));
    force.checked = false;
    after();
  });
  const section = h('section', { class: 'panel', 'aria-labelledby': 'h-ends-form' },
    h('h2', { id: 'h-ends-form' }, t('ends.formTitle')), form);
  section.choose = (who) => {
    user.value = who;
    add.focus();
  };
  return section;
}
