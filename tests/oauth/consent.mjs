// Drive the test authorization server (tests/oauth/server.mjs) like a browser
// that logs in and consents, and small helpers for its other endpoints.
//
//   const location = await consent(authorizationUrl, { cookieJar });
//   new URL(location).searchParams.get('code'|'state'|'iss'|'error')
//
// consent() follows the redirects of the authorization server with its own
// cookie jar (fetch, redirect: 'manual') and returns the Location that points
// at the client's redirect_uri, without following it. The redirect_uri is taken
// from the authorization URL's redirect_uri parameter, or options.redirectUri;
// failing both, the first Location that leaves the server's origin is returned.
// It throws when the server answers with anything but a redirect (e.g. an
// error page for an unknown client or redirect_uri).

import * as crypto from 'node:crypto';

export class CookieJar {
	constructor() {
		this.cookies = new Map(); // `${host} ${path} ${name}` -> { host, path, name, value, expires }
	}

	store(url, setCookies) {
		const u = new URL(url);
		for (const line of setCookies) {
			const [pair, ...attrs] = line.split(';');
			const eq = pair.indexOf('=');
			if (eq < 1) continue;
			const name = pair.slice(0, eq).trim();
			const value = pair.slice(eq + 1).trim();
			let path = u.pathname.replace(/\/[^/]*$/, '') || '/';
			let expires = Infinity;
			for (const a of attrs) {
				const i = a.indexOf('=');
				const k = (i < 0 ? a : a.slice(0, i)).trim().toLowerCase();
				const v = i < 0 ? '' : a.slice(i + 1).trim();
				if (k === 'path' && v.startsWith('/')) path = v;
				else if (k === 'max-age') expires = Date.now() + Number(v) * 1000;
				else if (k === 'expires' && expires === Infinity) expires = Date.parse(v);
			}
			const key = `${u.host} ${path} ${name}`;
			if (expires <= Date.now()) this.cookies.delete(key);
			else this.cookies.set(key, { host: u.host, path, name, value, expires });
		}
	}

	header(url) {
		const u = new URL(url);
		const now = Date.now();
		const out = [];
		for (const [key, c] of this.cookies) {
			if (c.expires <= now) {
				this.cookies.delete(key);
				continue;
			}
			if (c.host !== u.host) continue;
			const p = u.pathname;
			if (!(p === c.path || p.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))) continue;
			out.push({ c, len: c.path.length });
		}
		out.sort((a, b) => b.len - a.len);
		return out.map(({ c }) => `${c.name}=${c.value}`).join('; ');
	}
}

function sameTarget(location, redirectUri) {
	const a = new URL(location);
	const b = new URL(redirectUri);
	return a.origin === b.origin && a.pathname === b.pathname;
}

export async function consent(authorizationUrl, { cookieJar = new CookieJar(), redirectUri, maxHops = 20 } = {}) {
	const start = new URL(authorizationUrl);
	const target = redirectUri ?? start.searchParams.get('redirect_uri');
	let url = start.href;
	for (let hop = 0; hop < maxHops; hop++) {
		const headers = {};
		const cookie = cookieJar.header(url);
		if (cookie) headers.cookie = cookie;
		const res = await fetch(url, { redirect: 'manual', headers });
		cookieJar.store(url, res.headers.getSetCookie());
		const loc = res.headers.get('location');
		if (res.status < 300 || res.status >= 400 || !loc) {
			const body = await res.text();
			const err = new Error(`authorization server answered ${res.status} at ${url}: ${body.slice(0, 500)}`);
			err.status = res.status;
			err.body = body;
			throw err;
		}
		await res.arrayBuffer();
		const next = new URL(loc, url).href;
		if (target ? sameTarget(next, target) : new URL(next).origin !== start.origin) return next;
		url = next;
	}
	throw new Error(`more than ${maxHops} redirects from ${authorizationUrl}`);
}

// --- PKCE and authorization URLs (for tests that drive the server directly) ---

export function pkcePair() {
	const verifier = crypto.randomBytes(32).toString('base64url');
	const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
	return { verifier, challenge };
}

export function authorizationUrl(issuer, { clientId, redirectUri, scope = 'openid offline_access profile email', state, challenge, ...extra }) {
	const u = new URL('/auth', issuer);
	u.searchParams.set('response_type', 'code');
	u.searchParams.set('client_id', clientId);
	u.searchParams.set('redirect_uri', redirectUri);
	u.searchParams.set('scope', scope);
	if (state !== undefined) u.searchParams.set('state', state);
	if (challenge !== undefined) {
		u.searchParams.set('code_challenge', challenge);
		u.searchParams.set('code_challenge_method', 'S256');
	}
	for (const [k, v] of Object.entries(extra)) if (v !== undefined) u.searchParams.set(k, v);
	return u.href;
}

// client: { id, secret, auth?: 'client_secret_post' | 'client_secret_basic' } (default post)
function clientAuth(client, params, headers) {
	if (client.auth === 'client_secret_basic' || client.auth === 'basic') {
		const enc = (s) => encodeURIComponent(s).replace(/%20/g, '+');
		headers.authorization = `Basic ${Buffer.from(`${enc(client.id)}:${enc(client.secret)}`).toString('base64')}`;
	} else {
		params.set('client_id', client.id);
		params.set('client_secret', client.secret);
	}
}

async function post(url, client, fields) {
	const params = new URLSearchParams();
	for (const [k, v] of Object.entries(fields)) if (v !== undefined) params.set(k, v);
	const headers = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
	if (client) clientAuth(client, params, headers);
	const res = await fetch(url, { method: 'POST', headers, body: params.toString() });
	const text = await res.text();
	let body;
	try {
		body = JSON.parse(text);
	} catch {
		body = text;
	}
	return { status: res.status, headers: res.headers, body };
}

// POST to the token endpoint: returns { status, headers, body }.
export function token(issuer, fields, client) {
	return post(new URL('/token', issuer).href, client, fields);
}

// POST to the revocation endpoint: returns { status, headers, body }.
export function revoke(issuer, tokenValue, client, tokenTypeHint) {
	return post(new URL('/token/revocation', issuer).href, client, { token: tokenValue, token_type_hint: tokenTypeHint });
}

// Introspection (RFC 7662) as the given client: returns the JSON answer
// ({active: false} for unknown, expired, revoked or other clients' tokens).
export async function introspect(issuer, tokenValue, client) {
	const r = await post(new URL('/token/introspection', issuer).href, client, { token: tokenValue });
	if (r.status !== 200) throw new Error(`introspection answered ${r.status}: ${JSON.stringify(r.body)}`);
	return r.body;
}

// GET userinfo with a bearer token: returns { status, body }.
export async function userinfo(issuer, accessToken) {
	const res = await fetch(new URL('/me', issuer), { headers: { authorization: `Bearer ${accessToken}` } });
	const text = await res.text();
	let body;
	try {
		body = JSON.parse(text);
	} catch {
		body = text;
	}
	return { status: res.status, body, wwwAuthenticate: res.headers.get('www-authenticate') };
}

async function testJson(issuer, path, init) {
	const res = await fetch(new URL(path, issuer), init);
	const body = await res.json();
	if (res.status !== 200) throw new Error(`${path} answered ${res.status}: ${JSON.stringify(body)}`);
	return body;
}

// Counters: { token: {authorization_code, refresh_token, other, total}, revocation,
// revocation_by_hint, introspection, userinfo, authorization, misbehaved, modes }.
export function stats(issuer) {
	return testJson(issuer, '/_test/stats');
}

// The last 200 token/revocation/introspection/userinfo requests, without secrets.
export function requests(issuer) {
	return testJson(issuer, '/_test/requests');
}

export function resetStats(issuer) {
	return testJson(issuer, '/_test/reset', { method: 'POST' });
}

// setMode(issuer, 'down') sets the token endpoint's mode; an object sets several:
// { token?, revocation?, userinfo?, count?, slow_ms? }.
export function setMode(issuer, mode) {
	const body = typeof mode === 'string' ? { token: mode } : mode;
	return testJson(issuer, '/_test/mode', {
		method: 'POST',
		headers: { 'content-type': 'application/json' },
		body: JSON.stringify(body),
	});
}
