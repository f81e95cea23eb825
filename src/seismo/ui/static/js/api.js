// The REST API, as any client calls it: relative URLs, a bearer token from sessionStorage.
const TOKEN_KEY = "seismo.token";

export class ApiError extends Error {
  constructor(status, message, body) { super(message); this.status = status; this.body = body; }
}

export function token() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch { return ""; }
}

export function setToken(secret) {
  try { secret ? sessionStorage.setItem(TOKEN_KEY, secret) : sessionStorage.removeItem(TOKEN_KEY); } catch { /* private mode */ }
}

// Listeners for a 401 (the page asks for a token).
export const auth = new EventTarget();

/** Call `api/v1/<path>`; throws ApiError (status 0: the server could not be reached). */
export async function api(path, { method = "GET", params, body, timeoutMs = 10000 } = {}) {
  const url = new URL("api/v1/" + path.replace(/^\//, ""), document.baseURI);
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === "") continue;
    for (const one of Array.isArray(v) ? v : [v]) url.searchParams.append(k, String(one));
  }
  const headers = { Accept: "application/json" };
  const secret = token();
  if (secret) headers.Authorization = "Bearer " + secret;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  let reply;
  try {
    reply = await fetch(url, { method, headers, signal: ctl.signal, cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, "server unreachable", null);
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  try { data = await reply.json(); } catch { /* empty or not JSON */ }
  if (!reply.ok) {
    if (reply.status === 401) auth.dispatchEvent(new Event("unauthorized"));
    throw new ApiError(reply.status, (data && data.error) || reply.statusText, data);
  }
  return data;
}

/** The WebSocket URL of the stream, with `?token=` (browsers cannot set headers there). */
export function streamUrl() {
  const url = new URL("api/v1/stream", document.baseURI);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const secret = token();
  if (secret) url.searchParams.set("token", secret);
  return url.toString();
}
