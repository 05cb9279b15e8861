// An exam's network policy (docs/network-policy.md): the booking form's
// fields and the exam page's view of it. Without a policy of their own the
// exam's desktops get their worker's EXAM_* default; with one, the exam's
// replaces it (the worker's strict flag stays a floor).
import { h, field } from '../dom.js';
import { list } from '../format.js';
import { t } from '../i18n.js';

/**
 * The booking's network policy, folded away: whose policy (the workers'
 * default, restricted to the lists, or open), the lists, the origin and
 * strictness; `read()` gives `{ networkPolicy }` unless the default is kept.
 */
export function networkForm() {
  const mode = h('select', {},
    h('option', { value: 'default' }, t('net.modeDefault')),
    h('option', { value: 'restrict' }, t('net.modeRestrict')),
    h('option', { value: 'open' }, t('net.modeOpen')));
  const text = (placeholder) => h('input', { type: 'text', autocomplete: 'off', placeholder });
  const domains = text('sot.umtoj.edu.vn');
  const cidrs = text('103.90.220.0/22, 42.1.76.128/28');
  const ips = text('10.0.0.7');
  const origin = text('203.210.213.198');
  const strict = h('input', { type: 'checkbox', checked: true });
  strict.id = 'book-net-strict';
  const element = h('details', { class: 'options', id: 'booking-network' },
    h('summary', {}, t('net.title')),
    h('p', { class: 'hint' }, t('net.hint')),
    h('div', { class: 'inline' },
      field('book-net-mode', t('net.mode'), mode),
      h('div', { class: 'field check' }, strict, h('label', { for: 'book-net-strict' }, t('net.strict')))),
    h('div', { class: 'inline' },
      field('book-net-domains', t('net.domains'), domains),
      field('book-net-cidrs', t('net.cidrs'), cidrs),
      field('book-net-ips', t('net.ips'), ips),
      field('book-net-origin', t('net.origin'), origin)));

  function read() {
    if (mode.value === 'default') return {};
    const policy = { restrictInternet: mode.value === 'restrict', enforceStrict: strict.checked };
    const lists = { allowedDomains: domains, allowedCidrs: cidrs, allowedIps: ips };
    for (const [key, input] of Object.entries(lists)) {
      const entries = list(input.value);
      if (entries.length) policy[key] = entries;
    }
    if (origin.value.trim()) policy.originIp = origin.value.trim();
    return { networkPolicy: policy };
  }

  return { element, read };
}

/** The exam page's panel: the exam's policy, or the workers' default. */
export function networkPanel(policy) {
  const rows = [];
  if (!policy) {
    rows.push([t('net.mode'), t('net.modeDefault'), 'networkMode']);
  } else {
    rows.push([t('net.mode'), policy.restrictInternet ? t('net.modeRestrict') : t('net.modeOpen'), 'networkMode']);
    const shown = (entries) => (entries && entries.length ? entries.join(', ') : '—');
    rows.push(
      [t('net.domains'), shown(policy.allowedDomains), 'allowedDomains'],
      [t('net.cidrs'), shown(policy.allowedCidrs), 'allowedCidrs'],
      [t('net.ips'), shown(policy.allowedIps), 'allowedIps'],
      [t('net.origin'), policy.originIp || '—', 'originIp'],
      [t('net.strict'), policy.enforceStrict ? t('yes') : t('no'), 'enforceStrict']);
  }
  const dl = h('dl', { class: 'facts', id: 'exam-network' });
  for (const [label, value, key] of rows) dl.append(h('dt', {}, label), h('dd', { 'data-field': key }, value));
  return h('section', { class: 'panel', 'aria-labelledby': 'h-exam-network' },
    h('h2', { id: 'h-exam-network' }, t('net.title')), dl,
    h('p', { class: 'hint' }, t('net.precedence')));
}
