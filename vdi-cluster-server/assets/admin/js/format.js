// Times in the browser's own time zone, numbers and ages.
import { lang, t } from './i18n.js';

function locale() {
  return lang() === 'vi' ? 'vi-VN' : 'en-GB';
}

/** The browser's time zone name. */
export function timeZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** `when` (milliseconds since the epoch, or RFC 3339) as a local date and time. */
export function localTime(when) {
  if (when === null || when === undefined) return '—';
  const date = new Date(when);
  if (Number.isNaN(date.getTime())) return String(when);
  return new Intl.DateTimeFormat(locale(), {
    dateStyle: 'medium', timeStyle: 'medium', timeZone: timeZone(),
  }).format(date);
}

/** An age in seconds, for humans. */
export function age(seconds) {
  if (seconds === null || seconds === undefined) return t('never');
  if (seconds < 120) return t('ago', { n: seconds });
  if (seconds < 7200) return t('agoMin', { n: Math.floor(seconds / 60) });
  return t('agoHour', { n: Math.floor(seconds / 3600) });
}

/** A number in the page's language. */
export function num(n) {
  if (n === null || n === undefined) return '—';
  return new Intl.NumberFormat(locale()).format(n);
}

/** The value of a `datetime-local` input for `date` (local time). */
export function toLocalInput(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** A `datetime-local` value (local time) as RFC 3339 with the local offset. */
export function fromLocalInput(value) {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return null;
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  const pad = (n) => String(Math.floor(Math.abs(n))).padStart(2, '0');
  return `${value.length === 16 ? `${value}:00` : value}${sign}${pad(offset / 60)}:${pad(offset % 60)}`;
}

/** `a, b , c` → `['a', 'b', 'c']` (blanks dropped). */
export function list(text) {
  return text.split(',').map((x) => x.trim()).filter(Boolean);
}
