// Vietnamese and English texts of the page (a view with many texts of its
// own adds them with addTexts). The language comes from the operator's
// choice (kept in this browser), else the browser's languages.

import { EN } from './texts/en.js';
import { VI } from './texts/vi.js';

const TEXTS = { en: EN, vi: VI };

/** Adds a view's texts: `{en: {...}, vi: {...}}`. */
export function addTexts(texts) {
  for (const [code, more] of Object.entries(texts)) Object.assign(TEXTS[code], more);
}

const STORAGE_KEY = 'vdi-cluster.lang';
let current = 'en';

/** The language in use: `vi` or `en`. */
export function lang() {
  return current;
}

/** Picks the language: the operator's last choice, else the browser's. */
export function initLang() {
  const saved = window.localStorage.getItem(STORAGE_KEY);
  if (saved && TEXTS[saved]) {
    current = saved;
  } else {
    const wanted = navigator.languages || [navigator.language || 'en'];
    current = wanted.some((l) => l.toLowerCase().startsWith('vi')) ? 'vi' : 'en';
  }
  document.documentElement.lang = current;
}

/** Switches to `code` and remembers it in this browser. */
export function setLang(code) {
  if (!TEXTS[code]) return;
  current = code;
  window.localStorage.setItem(STORAGE_KEY, code);
  document.documentElement.lang = code;
}

/** The text of `key`, with `{name}` replaced from `vars`. */
export function t(key, vars = {}) {
  const text = TEXTS[current][key] ?? TEXTS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

/** Fills the static texts of `root`: `data-i18n` (text), `data-i18n-label` (aria-label). */
export function applyStatic(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-label]')) el.setAttribute('aria-label', t(el.dataset.i18nLabel));
}
