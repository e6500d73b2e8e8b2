// Access to reckon's JSON API. A 401 asks for a token once (a dialog), keeps it in this tab's
// sessionStorage and repeats the request with `Authorization: Bearer`; a declined dialog is not
// shown again by itself (the nav's token button opens it).

const TOKEN_KEY = 'reckon.token';

/** An answer of the API that is not a success, with the server's message. */
export class ApiError extends Error {
  constructor(status, message, path) {
    super(message);
    this.status = status;
    this.path = path;
  }
}

/** The token in use, if any. */
export function currentToken() {
  return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

let pending; // the open dialog's promise, shared by every request that got a 401 meanwhile
let declined = false;
const listeners = new Set();

/** Calls `listener()` after the token changed (to refresh the page at once). */
export function onTokenChange(listener) {
  listeners.add(listener);
}

/** Opens the token dialog; resolves true when a token was given, false when declined. */
export function askForToken(reason) {
  if (pending !== undefined) return pending;
  const dialog = document.getElementById('token-dialog');
  const input = document.getElementById('token-input');
  document.getElementById('token-reason').textContent = reason;
  input.value = '';
  pending = new Promise((resolve) => {
    dialog.addEventListener(
      'close',
      () => {
        pending = undefined;
        const value = input.value.trim();
        if (dialog.returnValue === 'forget') {
          sessionStorage.removeItem(TOKEN_KEY);
          declined = false;
          resolve(false);
        } else if (dialog.returnValue === 'ok' && value !== '') {
          sessionStorage.setItem(TOKEN_KEY, value);
          declined = false;
          resolve(true);
        } else {
          declined = true;
          resolve(false);
          return;
        }
        for (const l of listeners) l();
      },
      { once: true },
    );
    dialog.returnValue = '';
    dialog.showModal();
    input.focus();
  });
  return pending;
}

function scopeOf(response) {
  return /scope="(\w+)"/.exec(response.headers.get('www-authenticate') ?? '')?.[1] ?? 'read';
}

/**
 * Fetches `path` and returns its JSON. Throws {@link ApiError}: status 0 when reckon is not
 * reachable, else the HTTP status with the server's message.
 */
export async function api(path, { method = 'GET', body } = {}) {
  for (let asked = 0; ; asked++) {
    const headers = {};
    const token = currentToken();
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        cache: 'no-store',
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (e) {
      throw new ApiError(0, `reckon is not reachable (${e.message}): is reckon start still running?`, path);
    }
    if (response.status === 401 && asked < 3 && !declined) {
      const scope = scopeOf(response);
      const reason =
        token === undefined
          ? `This page needs the ${scope} token (RECKON_${scope.toUpperCase()}_TOKEN, or the admin token).`
          : `The token in use was not accepted for ${scope}: enter the ${scope} or the admin token.`;
      if (await askForToken(reason)) continue;
    }
    const text = await response.text();
    let json;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!response.ok) {
      let message = json?.message ?? (text.slice(0, 300) || response.statusText);
      if (response.status === 401)
        message = `${message} (use the token button at the top right to enter the ${scopeOf(response)} token)`;
      if (response.status === 403) message = `${message} (use the token button at the top right to change it)`;
      // Fastify's own 404 for a route this server does not have (an older reckon, or a part not built).
      if (response.status === 404 && (json?.message === undefined || /^Route \w+:/.test(json.message)))
        message = `${path.split('?')[0]} is not available on this server`;
      throw new ApiError(response.status, message, path);
    }
    return json;
  }
}
