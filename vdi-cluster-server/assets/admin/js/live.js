// The events stream: the browser sends the session cookie with it, so no
// credential goes into its URL. Views subscribe; recent events are kept
// for the overview and the events list.

import { t } from './i18n.js';

const NAMES = [
  'workerRegistered', 'workerRestarted', 'workerAvailability', 'workerPolicy',
  'workerRemoved', 'sessionMigrated', 'migrationFailed', 'sessionsOrphaned',
  'migrationSuspended', 'sessionAdopted', 'reservationAdopted', 'sessionStopped',
  'sessionLost', 'reconciled', 'examAtRisk', 'examFitsAgain', 'backendDegraded',
];
const KEPT = 100;

let source = null;
const listeners = new Set();
const stateListeners = new Set();
const recent = [];
let lastReport = null;

function publish(name, data) {
  if (name === 'reconciled') {
    lastReport = data.report || null;
    if (!didSomething(lastReport)) {
      for (const listener of listeners) listener(name, data, false);
      return;
    }
  }
  recent.unshift({ name, data, seenAt: Date.now() });
  recent.length = Math.min(recent.length, KEPT);
  for (const listener of listeners) listener(name, data, true);
}

function didSomething(report) {
  if (!report) return false;
  const counts = ['reservationsReclaimed', 'goneRemoved', 'staleRemoved', 'failedWorkerSessions',
    'migrated', 'migrationFailed', 'orphaned', 'sessionsAdopted', 'reservationsAdopted', 'duplicatesStopped',
    'sessionsLost'];
  return counts.some((k) => report[k] > 0) || report.policyChanges.length > 0 || report.drift.length > 0;
}

/**
 * Opens the stream (once). The browser sends the session cookie; `csrf`,
 * the session's CSRF token (useless without the cookie), proves the
 * request comes from the page, as `EventSource` cannot set a header.
 */
export function connect(csrf) {
  if (source) return;
  source = new EventSource(`/api/vdi/events?csrf=${encodeURIComponent(csrf || '')}`);
  source.addEventListener('ready', () => setState(true));
  source.addEventListener('error', () => setState(false));
  source.addEventListener('lagged', () => publish('lagged', {}));
  for (const name of NAMES) {
    source.addEventListener(name, (e) => {
      let data = {};
      try {
        data = JSON.parse(e.data);
      } catch {
        data = {};
      }
      publish(name, data);
    });
  }
}

/** Closes the stream (on sign-out). */
export function disconnect() {
  if (source) source.close();
  source = null;
  setState(false);
}

function setState(on) {
  for (const listener of stateListeners) listener(on);
}

/** Calls `listener(name, data, notable)` on every event; returns the unsubscribe function. */
export function subscribe(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Calls `listener(connected)` when the stream connects or drops. */
export function onState(listener) {
  stateListeners.add(listener);
}

/** Notable events seen since the page opened, newest first. */
export function recentEvents() {
  return recent.slice();
}

/** The report of the last reconcile pass seen (background or manual). */
export function lastReconcile() {
  return lastReport;
}

/** Records the report of a reconcile run from this page. */
export function noteReconcile(report) {
  lastReport = report;
}

/** One line describing an event. */
export function describe(name, data) {
  const parts = [name];
  const who = data.worker || data.examId || (data.session && `${data.session.examId}/${data.session.userId}`);
  if (who) parts.push(who);
  if (data.from !== undefined && data.to !== undefined) {
    const show = (v) => (typeof v === 'object' && v !== null ? v.state || JSON.stringify(v) : v);
    parts.push(`${show(data.from)} → ${show(data.to)}`);
  }
  if (data.reason) parts.push(`(${data.reason})`);
  if (data.actor) parts.push(`— ${data.actor}`);
  if (data.count !== undefined) parts.push(`×${data.count}`);
  if (name === 'backendDegraded') {
    parts.push(t('event.degraded', {
      seconds: ((data.until - data.since) / 1000).toFixed(1), failures: data.failures,
    }));
  }
  return parts.join(' ');
}
