// The API as the page calls it: same origin, the session cookie, the CSRF
// token on changes, and errors carrying the API's own message.

/** An answer other than 2xx: `message` is the API's. */
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

// The session's CSRF token goes with every request the cookie
// authenticates. It opens nothing without the cookie; this browser keeps
// it so that a reload over plain HTTP (where browsers send no
// Sec-Fetch-Site) can resume the session.
const CSRF_KEY = 'vdi-cluster.csrf';
let session = null;
let csrf = window.localStorage.getItem(CSRF_KEY);
const signedOutListeners = [];

function remember(next) {
  session = next;
  csrf = next ? next.csrfToken : null;
  if (csrf) window.localStorage.setItem(CSRF_KEY, csrf);
  else window.localStorage.removeItem(CSRF_KEY);
}

/** The session's CSRF token, for the events stream's URL. */
export function csrfToken() {
  return csrf;
}

/** The signed-in operator (`{sub, roles, csrfToken, expiresAt}`) or `null`. */
export function currentSession() {
  return session;
}

/** Whether the operator is an ADMIN (PROCTORs see fewer controls). */
export function isAdmin() {
  return Boolean(session && session.roles.includes('ADMIN'));
}

/** Calls `listener` when an answer says the session has ended. */
export function onSignedOut(listener) {
  signedOutListeners.push(listener);
}

async function send(method, path, { body, bearer } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  else if (csrf) headers['x-csrf-token'] = csrf;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, e.message, null);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const message = (data && data.message) || `${response.status} ${response.statusText}`;
    const error = new ApiError(response.status, message, data);
    if (response.status === 401 && !bearer) {
      const wasSignedIn = session !== null;
      remember(null);
      if (wasSignedIn) for (const listener of signedOutListeners) listener(error);
    }
    throw error;
  }
  return data;
}

/** `GET path`. */
export function get(path) {
  return send('GET', path);
}

/** A change: `method path` with a JSON `body` (optional). */
export function change(method, path, body) {
  return send(method, path, { body });
}

/** Exchanges `token` for the session cookie. */
export async function signIn(token) {
  remember(await send('POST', '/api/vdi/auth/session', { bearer: token }));
  return session;
}

/**
 * The session the cookie holds, if any. Only asked when this browser
 * signed in and has not signed out since (it keeps the session's CSRF
 * token until then): a signed-out visit makes no request that must fail.
 */
export async function resume() {
  if (!csrf) return null;
  try {
    remember(await send('GET', '/api/vdi/auth/session'));
  } catch {
    remember(null);
  }
  return session;
}

/** Ends the session (on every replica; clears the cookie). */
export async function signOut() {
  try {
    await send('DELETE', '/api/vdi/auth/session');
  } finally {
    remember(null);
  }
}

/**
 * Ends every operator's session, this one included (ADMIN only); answers
 * how many were ended.
 */
export async function signOutEverywhere() {
  const answer = await send('DELETE', '/api/vdi/auth/sessions');
  remember(null);
  return answer.ended;
}

/** Path segment `value`, escaped. */
export function seg(value) {
  return encodeURIComponent(value);
}
