import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import { DashboardExposedError } from '../errors.js';

/**
 * The cookie a `?token=` link leaves, so that the page's own requests carry it: named for the
 * port (browsers send a host's cookies to all its ports: dashboards on one host keep theirs apart)
 * and holding not the token but a value only this server's process accepts (an HMAC of the token
 * under a key made at start), so another service on the host that is sent it learns no token.
 */
function cookieName(port: number): string {
  return `dpf_dashboard_${port}`;
}

/** The header the page's POST actions send: a cross-site form cannot set it. */
export const ACTION_HEADER = 'X-DPF-Action';

/** What every response carries: the page loads only its own files, runs no inline script, and is framed by no one. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

/** Whether a host name to listen on reaches this machine only. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^127(\.\d{1,3}){3}$/.test(bare);
}

/** Refuses to listen where other machines reach the dashboard without a token. */
export function checkExposure(host: string, token: string | undefined): void {
  if (isLoopbackHost(host) || (token !== undefined && token !== '')) return;
  throw new DashboardExposedError(
    `the dashboard would listen on ${host}, where other machines reach it, without a token: give --token T (or set DPF_DASHBOARD_TOKEN), and open it with ?token=T; or listen on 127.0.0.1`,
  );
}

/** Whether two tokens are equal, in a time that does not tell how much of them matched. */
export function sameToken(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The Host header exactly as the client sent it (the adapter fills in a missing one from the listening address). */
function requestHost(c: Context): string {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  return incoming !== undefined ? (incoming.headers.host ?? '') : (c.req.header('host') ?? '');
}

/**
 * Whether the path as the client sent it has a `.` or `..` segment (plain or percent-encoded): the
 * router would resolve it away (`/assets/..` is `/`), and no dashboard URL has one.
 */
function hasDotSegment(c: Context): boolean {
  const raw = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming?.url ?? new URL(c.req.url).pathname;
  return raw
    .split('?')[0]!
    .split('/')
    .some((segment) => {
      let decoded = segment;
      try {
        decoded = decodeURIComponent(segment);
      } catch {
        // a malformed escape is the route's to refuse
      }
      return decoded === '.' || decoded === '..';
    });
}

export function errorResponse(c: Context, status: 400 | 401 | 403 | 404 | 409 | 500, error: string): Response {
  return c.json({ error }, status);
}

/**
 * The dashboard's guards, in order: security headers on every response; the Host header (a page
 * on another site that points its own name at 127.0.0.1 — DNS rebinding — sends its own name);
 * the token; and for POST, the Origin and the action header (a cross-site form sends neither).
 */
export function guard(options: { loopback: boolean; port: () => number; token: string | undefined }): MiddlewareHandler {
  const key = randomBytes(32);
  const session = options.token === undefined ? '' : createHmac('sha256', key).update(options.token).digest('base64url');
  return async (c, next) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) c.header(name, value);
    const response = await check(c, options, session);
    if (response !== undefined) return response;
    await next();
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) if (!c.res.headers.has(name)) c.res.headers.set(name, value);
  };
}

async function check(c: Context, options: { loopback: boolean; port: () => number; token: string | undefined }, session: string): Promise<Response | undefined> {
  const host = requestHost(c);
  if (options.loopback) {
    const port = options.port();
    if (![`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`].includes(host.toLowerCase())) {
      return errorResponse(c, 403, `the dashboard answers only as 127.0.0.1:${port} or localhost:${port}, not as "${host}"`);
    }
  }
  if (hasDotSegment(c)) return errorResponse(c, 400, 'a path with . or .. in it: the dashboard names nothing so');
  const token = options.token;
  if (token !== undefined && token !== '') {
    const url = new URL(c.req.url);
    const query = url.searchParams.get('token');
    if (query !== null) {
      if (!sameToken(query, token)) return errorResponse(c, 401, 'wrong token');
      setCookie(c, cookieName(options.port()), session, { httpOnly: true, sameSite: 'Strict', path: '/' });
      url.searchParams.delete('token');
      // A path, never `//host…` (which a browser takes for another site): the redirect stays here.
      return c.redirect(`/${url.pathname.replace(/^\/+/, '')}${url.search}`, 303);
    }
    const bearer = /^Bearer (.+)$/.exec(c.req.header('authorization') ?? '')?.[1];
    const cookie = getCookie(c, cookieName(options.port()));
    if (bearer !== undefined ? !sameToken(bearer, token) : cookie === undefined || !sameToken(cookie, session)) {
      return errorResponse(c, 401, 'the dashboard needs its token: open it with ?token=T, or send Authorization: Bearer T');
    }
  }
  if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
    const origin = c.req.header('origin');
    if (origin !== undefined && origin !== `http://${host}`) return errorResponse(c, 403, `an action from ${origin} is refused: only the dashboard's own page may act`);
    if (c.req.header(ACTION_HEADER) !== '1') return errorResponse(c, 403, `an action needs the header ${ACTION_HEADER}: 1 (the dashboard's page sends it)`);
  }
  return undefined;
}
