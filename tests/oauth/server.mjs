#!/usr/bin/env node
// A real OAuth 2.0 / OpenID Connect authorization server (oidc-provider) on
// 127.0.0.1 for integration tests of intauth's OAuth flow.
//
//   node tests/oauth/server.mjs --port P --redirect-uri URI
//        [--client-id ID --client-secret S]
//        [--basic-client-id ID --basic-client-secret S --basic-redirect-uri URI]
//        [--access-ttl SECONDS] [--refresh-ttl SECONDS] [--lenient-client-auth]
//        [--clock-tolerance SECONDS]
//
// --clock-tolerance (default 0 here, 15 in oidc-provider) is how long past
// its expiry a token is still accepted.
//
// Issuer http://127.0.0.1:P. Two confidential clients: one authenticating with
// client_secret_post, one with client_secret_basic. Both: authorization_code +
// refresh_token grants, PKCE S256 required, refresh tokens always issued for a
// code, rotated on every refresh (reusing a rotated one revokes the whole grant),
// revocation, introspection, userinfo, and the RFC 9207 `iss` on the redirect.
// Unset ids/secrets fall back to the environment (TESTOIDC_CLIENT_ID,
// TESTOIDC_CLIENT_SECRET, TESTOIDC_BASIC_CLIENT_ID, TESTOIDC_BASIC_CLIENT_SECRET),
// then to fixed test values. When --basic-redirect-uri is absent, the basic
// client gets the --redirect-uri values with "/testoidc/" replaced by
// "/testoidc_basic/".
//
// oidc-provider itself accepts client_secret_basic and client_secret_post
// interchangeably; this server answers 401 invalid_client when a client uses
// the method it is not registered for (at the token, revocation and
// introspection endpoints), unless --lenient-client-auth.
//
// Logins and consents are automatic: /interaction/:uid logs the request in as
// the account named by `login_hint` (default "user-1") and grants every
// requested scope and claim, so a plain HTTP client that follows redirects with
// a cookie jar (see consent.mjs) lands on redirect_uri?code=&state=&iss=.
//
// Test controls on the same port:
//   GET  /_test/stats     counts of token requests by grant_type, revocations, ...
//   GET  /_test/requests  the last 200 token/revocation/introspection/userinfo
//                         requests (no secrets: which auth method, which params)
//   POST /_test/reset     zero the counters and the request log, all modes normal
//   POST /_test/mode      {"token": "normal"|"down"|"slow"|"error500"|"garbage"|
//                         "invalid_grant"|"error503"|"error429", "revocation": ...,
//                         "userinfo": ..., "count": N?, "slow_ms": N?}
//     down: destroy the socket; slow: wait slow_ms (default 20000) then answer
//     normally (dropped without effect if the client hung up meanwhile); error500/error503/error429: that status with an OAuth error body;
//     garbage: 200 with a non-JSON body; invalid_grant: 400 {"error":"invalid_grant"};
//     invalid_token: 401 with WWW-Authenticate (for userinfo); ok_false: 200
//     {"ok": false, "error": "invalid_auth"}, as Slack's Web API fails;
//     insufficient_scope: 403 (a valid token lacking a scope); ratelimited:
//     200 {"ok": false, "error": "ratelimited"}.
//     "count": N makes the listed endpoints misbehave for the next N requests
//     only, then return to normal.
// Prints "OAUTH_READY http://127.0.0.1:P" on stdout once listening. Exits on
// SIGTERM/SIGINT.

import * as crypto from 'node:crypto';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import Provider from 'oidc-provider';

const { values: opt } = parseArgs({
	options: {
		port: { type: 'string' },
		host: { type: 'string', default: '127.0.0.1' },
		'redirect-uri': { type: 'string', multiple: true },
		'client-id': { type: 'string' },
		'client-secret': { type: 'string' },
		'basic-client-id': { type: 'string' },
		'basic-client-secret': { type: 'string' },
		'basic-redirect-uri': { type: 'string', multiple: true },
		'access-ttl': { type: 'string', default: '3600' },
		'refresh-ttl': { type: 'string', default: String(14 * 24 * 3600) },
		'lenient-client-auth': { type: 'boolean', default: false },
		'clock-tolerance': { type: 'string', default: '0' },
	},
	strict: true,
});

function die(msg) {
	process.stderr.write(`oauth server: ${msg}\n`);
	process.exit(2);
}

const port = Number(opt.port);
if (!Number.isInteger(port) || port <= 0 || port > 65535) die('--port P is required');
if (!opt['redirect-uri']?.length) die('--redirect-uri URI is required');
const accessTtl = Number(opt['access-ttl']);
const refreshTtl = Number(opt['refresh-ttl']);
if (!Number.isInteger(accessTtl) || accessTtl < 1) die('--access-ttl must be a positive integer');
if (!Number.isInteger(refreshTtl) || refreshTtl < 1) die('--refresh-ttl must be a positive integer');
const clockTolerance = Number(opt['clock-tolerance']);
if (!Number.isInteger(clockTolerance) || clockTolerance < 0) die('--clock-tolerance must be an integer >= 0');

const env = process.env;
const issuer = `http://${opt.host}:${port}`;
const redirectUris = opt['redirect-uri'];
const basicRedirectUris = opt['basic-redirect-uri']?.length
	? opt['basic-redirect-uri']
	: redirectUris.map((u) => u.replace('/testoidc/', '/testoidc_basic/'));

const clients = [
	{
		client_id: opt['client-id'] ?? env.TESTOIDC_CLIENT_ID ?? 'testoidc-client',
		client_secret: opt['client-secret'] ?? env.TESTOIDC_CLIENT_SECRET ?? 'testoidc-secret',
		token_endpoint_auth_method: 'client_secret_post',
		redirect_uris: redirectUris,
	},
	{
		client_id: opt['basic-client-id'] ?? env.TESTOIDC_BASIC_CLIENT_ID ?? 'testoidc-basic-client',
		client_secret: opt['basic-client-secret'] ?? env.TESTOIDC_BASIC_CLIENT_SECRET ?? 'testoidc-basic-secret',
		token_endpoint_auth_method: 'client_secret_basic',
		redirect_uris: basicRedirectUris,
	},
].map((c) => ({
	...c,
	grant_types: ['authorization_code', 'refresh_token'],
	response_types: ['code'],
	scope: 'openid profile email offline_access',
}));
if (clients[0].client_id === clients[1].client_id) die('the two clients need different ids');

// --- accounts: any id is a valid account with deterministic claims ---
function account(id) {
	return {
		accountId: id,
		async claims() {
			return {
				sub: id,
				name: `Test User ${id}`,
				given_name: 'Test',
				family_name: `User ${id}`,
				preferred_username: id,
				email: `${id}@example.test`,
				email_verified: true,
			};
		},
	};
}

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', alg: 'RS256', use: 'sig' };

const ownTokenOnly = async (ctx, client, token) => token.clientId === client.clientId;

const provider = new Provider(issuer, {
	clients,
	jwks: { keys: [signingKey] },
	cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
	findAccount: async (ctx, id) => account(id),
	claims: {
		openid: ['sub'],
		profile: ['name', 'given_name', 'family_name', 'preferred_username'],
		email: ['email', 'email_verified'],
	},
	scopes: ['openid', 'offline_access', 'profile', 'email'],
	responseTypes: ['code'],
	pkce: { required: () => true }, // S256 is the only method oidc-provider 9 supports
	// redirect_uri must be sent, and byte-identical, in both requests (RFC 6749 §4.1.3)
	allowOmittingSingleRegisteredRedirectUri: false,
	issueRefreshToken: async (ctx, client, code) =>
		client.grantTypeAllowed('refresh_token') && code.kind === 'AuthorizationCode',
	rotateRefreshToken: true,
	clockTolerance,
	expiresWithSession: async () => false,
	ttl: {
		AccessToken: accessTtl,
		AuthorizationCode: 120,
		IdToken: 3600,
		RefreshToken: refreshTtl,
		Grant: refreshTtl,
		Interaction: 600,
		Session: 24 * 3600,
		ClientCredentials: 600,
		DeviceCode: 600,
		BackchannelAuthenticationRequest: 600,
		PreAuthorizedCode: 600,
	},
	features: {
		devInteractions: { enabled: false },
		revocation: { enabled: true, allowedPolicy: ownTokenOnly },
		introspection: { enabled: true, allowedPolicy: ownTokenOnly },
		userinfo: { enabled: true },
		resourceIndicators: { enabled: false },
		rpInitiatedLogout: { enabled: false },
		pushedAuthorizationRequests: { enabled: false },
		dPoP: { enabled: false },
	},
	interactions: { url: async (ctx, interaction) => `/interaction/${interaction.uid}` },
	clientBasedCORS: () => false,
	async renderError(ctx, out) {
		ctx.type = 'json';
		ctx.body = out;
	},
});

// --- test controls: counters, request log, misbehaving endpoints ---
const ENDPOINTS = { '/token': 'token', '/token/revocation': 'revocation', '/token/introspection': 'introspection', '/me': 'userinfo' };
const MODES = new Set(['normal', 'down', 'slow', 'error500', 'error503', 'error429', 'garbage', 'invalid_grant',
	'invalid_token', 'ok_false', 'insufficient_scope', 'ratelimited']);
let stats;
let requests;
let modes;
function reset() {
	stats = {
		token: { authorization_code: 0, refresh_token: 0, other: 0, total: 0 },
		revocation: 0,
		revocation_by_hint: {},
		introspection: 0,
		userinfo: 0,
		authorization: 0,
		misbehaved: 0,
	};
	requests = [];
	modes = {
		token: { mode: 'normal', left: Infinity },
		revocation: { mode: 'normal', left: Infinity },
		userinfo: { mode: 'normal', left: Infinity },
	};
}
reset();
let slowMs = 20000;

async function readRaw(req) {
	const chunks = [];
	let n = 0;
	for await (const c of req.iterator({ destroyOnReturn: false })) {
		n += c.length;
		if (n > 64 * 1024) throw new Error('body too large');
		chunks.push(c);
	}
	return Buffer.concat(chunks).toString('utf8');
}

function clientAuthOf(ctx, form) {
	const h = ctx.get('authorization');
	if (/^basic /i.test(h)) {
		let id = null;
		try {
			const dec = Buffer.from(h.slice(6).trim(), 'base64').toString('utf8');
			id = decodeURIComponent(dec.slice(0, dec.indexOf(':')).replace(/\+/g, ' '));
		} catch {
			/* reported as given */
		}
		return { client_auth: 'client_secret_basic', client_id: id };
	}
	if (form.client_secret !== undefined) return { client_auth: 'client_secret_post', client_id: form.client_id ?? null };
	return { client_auth: 'none', client_id: form.client_id ?? null };
}

const SECRET_PARAMS = new Set(['client_secret', 'code', 'code_verifier', 'refresh_token', 'token', 'client_assertion']);

async function misbehave(ctx, mode) {
	stats.misbehaved++;
	switch (mode) {
	case 'down':
		ctx.respond = false;
		ctx.req.socket.destroy();
		return true;
	case 'slow':
		await sleep(slowMs);
		// a client that gave up meanwhile gets nothing, and its request has no
		// effect (a refresh is not performed behind its back)
		if (ctx.req.socket.destroyed) {
			ctx.respond = false;
			return true;
		}
		return false; // then answer normally
	case 'error500':
	case 'error503':
	case 'error429':
		ctx.status = Number(mode.slice(5));
		ctx.set('Cache-Control', 'no-store');
		if (mode === 'error429' || mode === 'error503') ctx.set('Retry-After', '1');
		ctx.body = { error: mode === 'error500' ? 'server_error' : 'temporarily_unavailable' };
		return true;
	case 'invalid_token':
		// a protected resource refusing the bearer token (RFC 6750 §3.1)
		ctx.status = 401;
		ctx.set('WWW-Authenticate', 'Bearer error="invalid_token"');
		ctx.body = { error: 'invalid_token' };
		return true;
	case 'insufficient_scope':
		// a valid token without the scope asked for (RFC 6750 §3.1), or as
		// GitHub answers a rate-limited caller: 403
		ctx.status = 403;
		ctx.set('WWW-Authenticate', 'Bearer error="insufficient_scope"');
		ctx.body = { error: 'insufficient_scope' };
		return true;
	case 'ratelimited':
		// Slack's Web API over its rate limit: 200, "ok": false, not an auth error
		ctx.status = 200;
		ctx.body = { ok: false, error: 'ratelimited' };
		return true;
	case 'garbage':
		ctx.status = 200;
		ctx.type = 'text/html';
		ctx.body = '<html><body>this is not JSON {</body></html>';
		return true;
	case 'ok_false':
		// how Slack's Web API answers a failed call: 200, and "ok": false
		ctx.status = 200;
		ctx.body = { ok: false, error: 'invalid_auth' };
		return true;
	case 'invalid_grant':
		ctx.status = 400;
		ctx.set('Cache-Control', 'no-store');
		ctx.body = { error: 'invalid_grant', error_description: 'forced by /_test/mode' };
		return true;
	default:
		return false;
	}
}

function json(ctx, status, body) {
	ctx.status = status;
	ctx.set('Cache-Control', 'no-store');
	ctx.body = body;
}

provider.use(async (ctx, next) => {
	const path = ctx.path;

	if (path.startsWith('/_test/')) {
		if (ctx.method === 'GET' && path === '/_test/stats') {
			return json(ctx, 200, { ...stats, modes: Object.fromEntries(Object.entries(modes).map(([k, v]) => [k, v.mode])) });
		}
		if (ctx.method === 'GET' && path === '/_test/requests') return json(ctx, 200, requests);
		if (ctx.method === 'POST' && path === '/_test/reset') {
			reset();
			return json(ctx, 200, { ok: true });
		}
		if (ctx.method === 'POST' && path === '/_test/mode') {
			let body;
			try {
				body = JSON.parse((await readRaw(ctx.req)) || '{}');
			} catch {
				return json(ctx, 400, { error: 'invalid_json' });
			}
			const count = body.count === undefined ? Infinity : Number(body.count);
			if (!(count > 0)) return json(ctx, 400, { error: 'invalid_count' });
			for (const k of Object.keys(modes)) {
				if (body[k] === undefined) continue;
				if (!MODES.has(body[k])) return json(ctx, 400, { error: 'invalid_mode', endpoint: k });
			}
			for (const k of Object.keys(modes)) {
				if (body[k] !== undefined) modes[k] = { mode: body[k], left: body[k] === 'normal' ? Infinity : count };
			}
			if (body.slow_ms !== undefined) slowMs = Number(body.slow_ms);
			return json(ctx, 200, { ok: true, modes: Object.fromEntries(Object.entries(modes).map(([k, v]) => [k, v.mode])) });
		}
		return json(ctx, 404, { error: 'not_found' });
	}

	if (path.startsWith('/interaction/')) return interaction(ctx);

	if (path === '/auth') stats.authorization++;

	const endpoint = ENDPOINTS[path];
	if (!endpoint) return next();

	// Read the body here (oidc-provider then parses ctx.req.body) so that every
	// request is counted, whatever the mode and whatever the provider decides.
	let form = {};
	if (ctx.method === 'POST') {
		const raw = await readRaw(ctx.req);
		ctx.req.body = raw;
		if (ctx.is('application/x-www-form-urlencoded')) form = Object.fromEntries(new URLSearchParams(raw));
	}
	const entry = { endpoint, method: ctx.method, at: Date.now(), ...clientAuthOf(ctx, form), params: {} };
	for (const [k, v] of Object.entries(form)) entry.params[k] = SECRET_PARAMS.has(k) ? (v === '' ? '' : '<present>') : v;
	if (endpoint === 'token') {
		const g = form.grant_type;
		entry.grant_type = g ?? null;
		stats.token[g === 'authorization_code' || g === 'refresh_token' ? g : 'other']++;
		stats.token.total++;
	} else if (endpoint === 'revocation') {
		stats.revocation++;
		const hint = form.token_type_hint ?? 'none';
		stats.revocation_by_hint[hint] = (stats.revocation_by_hint[hint] ?? 0) + 1;
	} else {
		stats[endpoint]++;
		if (endpoint === 'userinfo') entry.bearer = /^bearer /i.test(ctx.get('authorization'));
	}
	requests.push(entry);
	if (requests.length > 200) requests.shift();

	const m = modes[endpoint];
	if (m && m.mode !== 'normal') {
		const mode = m.mode;
		if (--m.left <= 0) modes[endpoint] = { mode: 'normal', left: Infinity };
		if (await misbehave(ctx, mode)) {
			entry.status = ctx.respond === false ? 'destroyed' : ctx.status;
			return undefined;
		}
	}
	if (!opt['lenient-client-auth'] && endpoint !== 'userinfo' && entry.client_auth !== 'none') {
		const registered = clients.find((c) => c.client_id === entry.client_id)?.token_endpoint_auth_method;
		if (registered && registered !== entry.client_auth) {
			json(ctx, 401, {
				error: 'invalid_client',
				error_description: `client is registered for ${registered}, not ${entry.client_auth}`,
			});
			if (entry.client_auth === 'client_secret_basic') ctx.set('WWW-Authenticate', `Basic realm="${issuer}"`);
			entry.status = 401;
			entry.error = 'invalid_client';
			return undefined;
		}
	}
	await next();
	entry.status = ctx.status;
	if (ctx.body && typeof ctx.body === 'object' && ctx.body.error) entry.error = ctx.body.error;
	return undefined;
});

// Automatic login (as login_hint or "user-1") and consent (everything asked).
async function interaction(ctx) {
	let details;
	try {
		details = await provider.interactionDetails(ctx.req, ctx.res);
	} catch (err) {
		return json(ctx, 400, { error: 'interaction_not_found', error_description: String(err.message) });
	}
	const { prompt, params, session } = details;
	let result;
	if (prompt.name === 'login') {
		const hint = typeof params.login_hint === 'string' && params.login_hint ? params.login_hint : 'user-1';
		result = { login: { accountId: hint } };
	} else if (prompt.name === 'consent') {
		const accountId = session.accountId;
		const grant = details.grantId
			? await provider.Grant.find(details.grantId)
			: new provider.Grant({ accountId, clientId: params.client_id });
		const d = prompt.details;
		if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
		if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
		if (d.missingResourceScopes) {
			for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) {
				grant.addResourceScope(indicator, scopes.join(' '));
			}
		}
		const grantId = await grant.save();
		result = { consent: details.grantId ? {} : { grantId } };
	} else {
		result = { error: 'access_denied', error_description: `unsupported prompt ${prompt.name}` };
	}
	const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: true });
	ctx.status = 303;
	ctx.redirect(to);
	ctx.body = '';
	return undefined;
}

provider.on('server_error', (ctx, err) => process.stderr.write(`server_error: ${err?.stack ?? err}\n`));

const server = provider.listen(port, opt.host, () => {
	process.stdout.write(`OAUTH_READY ${issuer}\n`);
});
server.on('error', (err) => die(`listen: ${err.message}`));

function stop() {
	server.close();
	server.closeAllConnections?.();
	process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
