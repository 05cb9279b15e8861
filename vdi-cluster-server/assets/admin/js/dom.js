// Building the page from data without ever parsing data as HTML.

/**
 * An element: `attrs` become attributes (`class`, `for`, `data-*`, `aria-*`…;
 * `false`/`null` skip one, `true` sets it empty) except `on<event>`
 * functions, which become listeners; `children` are nodes or text.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name === 'value') {
      el.value = value;
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the contents of `el` with `children`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A table: `columns` are `[heading, class?]`, `rows` arrays of cells (a cell may be `{value, attrs}`). */
export function table(columns, rows, attrs = {}) {
  const head = h('thead', {}, h('tr', {}, columns.map(([label, cls]) => h('th', { scope: 'col', class: cls }, label))));
  const body = h('tbody', {}, rows.map((row) => {
    const tr = h('tr', row.attrs || {});
    row.cells.forEach((cell, i) => {
      const [label, cls] = columns[i];
      const plain = cell === null || typeof cell !== 'object' || cell instanceof Node || Array.isArray(cell);
      const content = plain ? cell : cell.value;
      const extra = plain ? {} : cell.attrs;
      tr.append(h('td', { class: cls, 'data-label': label, ...extra }, content ?? '—'));
    });
    return tr;
  }));
  // A region that scrolls must be reachable by keyboard.
  const label = attrs['aria-label'] ?? null;
  const region = { class: 'scroll', tabindex: 0, role: label && 'region', 'aria-label': label };
  return h('div', region, h('table', { class: 'responsive', ...attrs }, head, body));
}

/** A labelled form field; `control` gets `id` so the label points at it. */
export function field(id, label, control) {
  control.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), control);
}

/** A badge whose tone (`ok`, `warn`, `bad`, `muted`) colours it. */
export function badge(text, tone, attrs = {}) {
  return h('span', { class: 'badge', 'data-tone': tone, ...attrs }, text);
}
