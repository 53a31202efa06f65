// The Integrations page: the provider catalog, the signed-in user's connections
// and their actions, over intauth's own routes on this origin.
//
// Security notes:
// - Every piece of data (API answers, the page's query string) reaches the
//   document through textContent or attribute values set from code, never as
//   HTML, so nothing an API or a link holds can run as markup.
// - The user's JWT comes once from the URL fragment (#token=..., the link that
//   `make run` prints; a fragment is never sent to a server), is kept in
//   sessionStorage (this tab only) and removed from the address bar at once.
// - No inline script or style: the Content-Security-Policy forbids both.
'use strict';

(() => {
	const TOKEN_KEY = 'intauth.token';
	const LOG_LIMIT = 20;
	const CONFIRM_MS = 5000;

	const STATUS_TEXT = {
		connected: 'Connected',
		expired: 'Expired',
		error: 'Error',
		revoked: 'Revoked',
		pending: 'Pending',
	};

	const AUTH_TYPE_TEXT = { oauth2: 'OAuth 2.0', api_key: 'API key', basic: 'Username and password' };

	// The error codes the OAuth callback can send back (?status=error&error=...).
	const CALLBACK_ERRORS = {
		access_denied: (p) => `You declined the request at ${p}, so nothing was connected.`,
		invalid_request: (p) => `${p} refused the sign-in request. Please try again.`,
		unauthorized_client: (p) => `${p} does not allow this application to connect. An administrator needs to check the client registration.`,
		unsupported_response_type: (p) => `${p} does not support this way of signing in.`,
		invalid_scope: (p) => `${p} refused the requested permissions.`,
		server_error: (p) => `${p} had an internal error. Please try again later.`,
		temporarily_unavailable: (p) => `${p} is temporarily unavailable. Please try again in a few minutes.`,
		provider_error: (p) => `${p} answered in an unexpected way, so the connection could not be completed. Please try again.`,
		provider_timeout: (p) => `${p} did not answer in time. Please try again.`,
		invalid_issuer: (p) => `The answer did not come from ${p} (issuer mismatch), so it was refused.`,
		invalid_state: () => 'The sign-in link has expired or was already used. Please start again.',
		unknown_provider: () => 'This provider is no longer available.',
		internal_error: (p) => `Something went wrong on our side while saving the connection to ${p}. Please try again.`,
		unavailable: () => 'The service is temporarily unavailable. Please try again in a moment.',
	};

	// Hints for API errors whose server message alone doesn't say what to do.
	const API_ERROR_HINTS = {
		reauthorization_required: 'The provider no longer accepts this connection: use Reconnect to sign in again.',
		not_connected: 'There is no usable credential for this connection: use Reconnect.',
		unavailable: 'The service is temporarily unavailable. Please try again in a moment.',
		rate_limited: 'Too many requests. Please wait a moment and try again.',
	};

	const state = {
		token: null,
		claims: null,
		providers: [],          // from GET /api/providers
		integrations: [],       // from GET /api/integrations
		openLogs: new Set(),    // integration ids whose activity is shown
		openForm: null,         // "provider:<name>" or "integration:<id>": the credentials form shown
		busy: new Set(),        // integration ids / provider names with a request in flight
	};

	const $ = (id) => document.getElementById(id);

	// ---------------------------------------------------------------- DOM

	// el('div', {class: 'x', dataset: {a: 'b'}, onclick: f}, child, 'text', ...)
	function el(tag, attrs = {}, ...children) {
		const node = document.createElement(tag);
		for (const [k, v] of Object.entries(attrs)) {
			if (v === undefined || v === null || v === false) continue;
			if (k === 'class') node.className = v;
			else if (k === 'dataset') Object.assign(node.dataset, v);
			else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
			else if (k === 'text') node.textContent = v;
			else if (v === true) node.setAttribute(k, '');
			else node.setAttribute(k, String(v));
		}
		for (const c of children.flat()) {
			if (c === undefined || c === null || c === false) continue;
			node.append(c instanceof Node ? c : document.createTextNode(String(c)));
		}
		return node;
	}

	let flashTimer = null;
	function flash(kind, text, { sticky = false } = {}) {
		const box = $('flash');
		box.className = `flash flash-${kind}`;
		box.dataset.kind = kind;
		$('flash-text').textContent = text;
		box.hidden = false;
		clearTimeout(flashTimer);
		if (!sticky && kind === 'success') flashTimer = setTimeout(() => { box.hidden = true; }, 8000);
	}

	// ---------------------------------------------------------------- session

	function decodeClaims(token) {
		const parts = token.split('.');
		if (parts.length !== 3) return null;
		try {
			const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
			const json = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
			const claims = JSON.parse(json);
			return claims && typeof claims === 'object' ? claims : null;
		} catch {
			return null;
		}
	}

	function setToken(token) {
		const claims = token ? decodeClaims(token) : null;
		if (!token || !claims) {
			state.token = null;
			state.claims = null;
			sessionStorage.removeItem(TOKEN_KEY);
			return false;
		}
		state.token = token;
		state.claims = claims;
		sessionStorage.setItem(TOKEN_KEY, token);
		return true;
	}

	function tokenExpired() {
		const exp = Number(state.claims?.exp);
		return Number.isFinite(exp) && exp * 1000 <= Date.now();
	}

	// Takes #token=... from the address bar once, then removes it from there
	// (and from the history entry) so it isn't bookmarked or shared by accident.
	function adoptFragmentToken() {
		if (!location.hash.startsWith('#')) return;
		const params = new URLSearchParams(location.hash.slice(1));
		const token = params.get('token');
		if (token === null) return;
		history.replaceState(null, '', location.pathname + location.search);
		if (!setToken(token.trim())) flash('error', 'The sign-in link holds no valid token.');
	}

	function renderSession() {
		const signedIn = Boolean(state.token);
		$('session').hidden = !signedIn;
		$('signin').hidden = signedIn;
		if (signedIn) {
			const sub = typeof state.claims.sub === 'string' ? state.claims.sub : 'unknown user';
			const exp = Number(state.claims.exp);
			$('session-who').textContent = Number.isFinite(exp)
				? `Signed in as ${sub} · token expires ${relative(new Date(exp * 1000))}`
				: `Signed in as ${sub}`;
			$('session-who').title = sub;
		}
	}

	function signOut(message) {
		setToken(null);
		state.integrations = [];
		state.openLogs.clear();
		state.openForm = null;
		renderSession();
		renderConnections();
		renderProviders();
		if (message) flash('error', message, { sticky: true });
	}

	// ---------------------------------------------------------------- API

	class ApiError extends Error {
		constructor(status, code, message) {
			super(message);
			this.status = status;
			this.code = code;
		}
	}

	async function api(method, path, body) {
		const headers = { accept: 'application/json' };
		if (state.token) headers.authorization = `Bearer ${state.token}`;
		const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
		if (body !== undefined) {
			headers['content-type'] = 'application/json';
			init.body = JSON.stringify(body);
		}
		let res;
		try {
			res = await fetch(path, init);
		} catch {
			throw new ApiError(0, 'network_error', 'The service could not be reached. Check your connection and try again.');
		}
		let data = null;
		try {
			data = await res.json();
		} catch {
			data = null;
		}
		if (!res.ok) {
			const code = typeof data?.error?.code === 'string' ? data.error.code : `http_${res.status}`;
			const message = typeof data?.error?.message === 'string' ? data.error.message : `The service answered HTTP ${res.status}.`;
			if (res.status === 401 && state.token) signOut('Your session is no longer valid. Sign in again with a fresh link.');
			throw new ApiError(res.status, code, message);
		}
		if (!data || typeof data !== 'object') throw new ApiError(res.status, 'invalid_answer', 'The service sent an answer this page does not understand.');
		return data;
	}

	function errorText(err) {
		if (!(err instanceof ApiError)) return 'Something went wrong in this page. Reload and try again.';
		const hint = API_ERROR_HINTS[err.code];
		return hint ? `${err.message} ${hint}` : err.message;
	}

	// ---------------------------------------------------------------- formatting

	const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
	const relFormat = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

	function relative(date) {
		const s = Math.round((date.getTime() - Date.now()) / 1000);
		const a = Math.abs(s);
		if (a < 45) return relFormat.format(s, 'second');
		if (a < 45 * 60) return relFormat.format(Math.round(s / 60), 'minute');
		if (a < 36 * 3600) return relFormat.format(Math.round(s / 3600), 'hour');
		return relFormat.format(Math.round(s / 86400), 'day');
	}

	// <time> with a relative text and the exact time as a tooltip.
	function timeEl(iso, never = 'never') {
		if (!iso) return el('span', { class: 'muted', text: never });
		const d = new Date(iso);
		if (Number.isNaN(d.getTime())) return el('span', { class: 'muted', text: 'unknown' });
		return el('time', { datetime: iso, title: timeFormat.format(d), text: relative(d) });
	}

	function providerOf(name) {
		return state.providers.find((p) => p.name === name) || null;
	}

	function displayName(name) {
		const p = providerOf(name);
		if (p && typeof p.display_name === 'string' && p.display_name) return p.display_name;
		return /^[a-z0-9_]{1,64}$/.test(name) ? name : 'the provider';
	}

	function initials(text) {
		const words = String(text).replace(/[^\p{L}\p{N} ]+/gu, ' ').trim().split(/\s+/).filter(Boolean);
		if (words.length === 0) return '?';
		if (words.length === 1) return words[0].slice(0, 2).toUpperCase();
		return (words[0][0] + words[1][0]).toUpperCase();
	}

	// A logo stand-in: initials on a colour picked from the provider's name,
	// one of a fixed palette of CSS classes (no inline styles under the CSP).
	function badge(name, label, size = '') {
		let h = 0;
		for (const ch of String(name)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
		return el('span', { class: `badge badge-c${h % 12} ${size}`.trim(), 'aria-hidden': 'true', text: initials(label) });
	}

	// ---------------------------------------------------------------- actions

	function pageUrl() {
		return location.origin + location.pathname;
	}

	async function startOAuth(provider, connection) {
		const q = new URLSearchParams({ redirect_to: pageUrl() });
		if (connection && connection !== 'default') q.set('connection', connection);
		const data = await api('GET', `/api/auth/${encodeURIComponent(provider)}/start?${q}`);
		let url;
		try {
			url = new URL(data.url);
		} catch {
			throw new ApiError(0, 'invalid_answer', 'The service sent an invalid authorization address.');
		}
		if (url.protocol !== 'https:' && url.protocol !== 'http:') {
			throw new ApiError(0, 'invalid_answer', 'The service sent an invalid authorization address.');
		}
		flash('info', `Taking you to ${displayName(provider)}…`, { sticky: true });
		location.href = url.href;
	}

	// Runs fn with `key` marked busy (its buttons disabled), showing errors.
	// rerender: false leaves the page as it is meanwhile (a form keeps what
	// was typed into it when the request fails).
	async function withBusy(key, fn, { rerender = true } = {}) {
		if (state.busy.has(key)) return;
		state.busy.add(key);
		if (rerender) renderAll();
		try {
			await fn();
		} catch (err) {
			flash('error', errorText(err), { sticky: true });
		} finally {
			state.busy.delete(key);
			if (rerender) renderAll();
		}
	}

	function requireSignIn() {
		if (state.token) return true;
		flash('error', 'Sign in first: open the link that make run printed, or paste a token above.', { sticky: true });
		$('signin-token').focus();
		return false;
	}

	function connectProvider(p) {
		if (!requireSignIn()) return;
		if (p.auth_type === 'oauth2') {
			const existing = state.integrations.some((i) => i.provider === p.name && i.connection === 'default' && i.status !== 'revoked');
			if (existing) {
				// A second account of the same provider needs its own label.
				toggleForm(`provider:${p.name}`);
				return;
			}
			withBusy(p.name, () => startOAuth(p.name, 'default'));
			return;
		}
		toggleForm(`provider:${p.name}`);
	}

	function reconnect(i) {
		if (!requireSignIn()) return;
		if (i.auth_type === 'oauth2') {
			withBusy(i.id, () => startOAuth(i.provider, i.connection));
			return;
		}
		toggleForm(`integration:${i.id}`);
	}

	function refresh(i) {
		withBusy(i.id, async () => {
			const data = await api('POST', '/functions/v1/refreshToken', { integration_id: i.id, force: true });
			flash('success', data.refreshed
				? `${displayName(i.provider)}: the access token was refreshed.`
				: `${displayName(i.provider)}: the token was already fresh.`);
			await loadIntegrations();
		});
	}

	function disconnect(i) {
		withBusy(i.id, async () => {
			await api('POST', '/functions/v1/revokeToken', { integration_id: i.id });
			flash('success', `Disconnected ${displayName(i.provider)}${i.connection !== 'default' ? ` (${i.connection})` : ''}. Its credentials were revoked and deleted.`);
			await loadIntegrations();
		});
	}

	function remove(i) {
		withBusy(i.id, async () => {
			await api('DELETE', `/api/integrations/${encodeURIComponent(i.id)}`);
			state.openLogs.delete(i.id);
			flash('success', `Removed ${displayName(i.provider)}${i.connection !== 'default' ? ` (${i.connection})` : ''} from your connections.`);
			await loadIntegrations();
		});
	}

	function toggleForm(key) {
		state.openForm = state.openForm === key ? null : key;
		renderAll();
		const form = document.querySelector(`form[data-form="${CSS.escape(key)}"]`);
		form?.querySelector('input:not([readonly])')?.focus();
	}

	function toggleLogs(i) {
		if (state.openLogs.has(i.id)) state.openLogs.delete(i.id);
		else state.openLogs.add(i.id);
		renderConnections();
		if (state.openLogs.has(i.id)) loadLogs(i.id);
	}

	// A button that asks for a second click within CONFIRM_MS before acting.
	function confirmButton(label, confirmLabel, action, attrs = {}) {
		let armed = false;
		let timer = null;
		const btn = el('button', { type: 'button', class: 'btn btn-danger', ...attrs, text: label });
		btn.addEventListener('click', () => {
			if (!armed) {
				armed = true;
				btn.textContent = confirmLabel;
				btn.classList.add('armed');
				timer = setTimeout(() => {
					armed = false;
					btn.textContent = label;
					btn.classList.remove('armed');
				}, CONFIRM_MS);
				return;
			}
			clearTimeout(timer);
			action();
		});
		return btn;
	}

	// ---------------------------------------------------------------- credential forms

	const LABEL_PATTERN = '[A-Za-z0-9_.:@\\-]{1,64}';

	function field(id, label, input, help) {
		return el('div', { class: 'field' },
			el('label', { for: id, text: label }),
			input,
			help ? el('small', { class: 'muted', text: help }) : null);
	}

	// The form for api_key / basic providers (store) and for an oauth2
	// provider's additional account (label only, then the OAuth flow).
	function credentialsForm(provider, authType, key, fixedConnection) {
		const uid = `f-${key.replace(/[^a-z0-9_-]/gi, '-')}`;
		const form = el('form', { class: 'cred-form', dataset: { form: key }, autocomplete: 'off' });
		const connInput = el('input', {
			id: `${uid}-connection`, name: 'connection', type: 'text', pattern: LABEL_PATTERN, maxlength: 64,
			placeholder: 'default', value: fixedConnection || '', readonly: Boolean(fixedConnection),
			required: authType === 'oauth2' && !fixedConnection,
		});
		form.append(field(`${uid}-connection`, 'Connection label', connInput,
			fixedConnection ? null : 'Optional: tells two accounts of one provider apart (letters, digits, _ . : @ -).'));
		if (authType === 'api_key') {
			form.append(field(`${uid}-api-key`, 'API key',
				el('input', { id: `${uid}-api-key`, name: 'api_key', type: 'password', required: true, autocomplete: 'new-password', spellcheck: 'false' })));
		} else if (authType === 'basic') {
			form.append(field(`${uid}-username`, 'Username',
				el('input', { id: `${uid}-username`, name: 'username', type: 'text', required: true, autocomplete: 'off', spellcheck: 'false' })));
			form.append(field(`${uid}-password`, 'Password',
				el('input', { id: `${uid}-password`, name: 'password', type: 'password', required: true, autocomplete: 'new-password' })));
		}
		const busy = state.busy.has(key);
		form.append(el('div', { class: 'actions' },
			el('button', { type: 'submit', class: 'btn btn-primary', disabled: busy, text: authType === 'oauth2' ? `Continue to ${displayName(provider)}` : 'Save' }),
			el('button', { type: 'button', class: 'btn btn-quiet', onclick: () => toggleForm(key), text: 'Cancel' })));
		form.addEventListener('submit', (ev) => {
			ev.preventDefault();
			const data = new FormData(form);
			const connection = String(data.get('connection') || '').trim() || 'default';
			const submit = form.querySelector('button[type="submit"]');
			submit.disabled = true;
			const done = () => { submit.disabled = false; };
			if (authType === 'oauth2') {
				withBusy(key, () => startOAuth(provider, connection), { rerender: false }).finally(done);
				return;
			}
			const credentials = authType === 'api_key'
				? { api_key: String(data.get('api_key') || '') }
				: { username: String(data.get('username') || ''), password: String(data.get('password') || '') };
			withBusy(key, async () => {
				const body = { provider, auth_type: authType, credentials };
				if (connection !== 'default') body.connection = connection;
				await api('POST', '/functions/v1/storeCredentials', body);
				form.reset();
				state.openForm = null;
				flash('success', `Connected ${displayName(provider)}${connection !== 'default' ? ` (${connection})` : ''}.`);
				await loadIntegrations();
			}, { rerender: false }).finally(done);
		});
		return form;
	}

	// ---------------------------------------------------------------- rendering

	function statusPill(status) {
		const known = Object.hasOwn(STATUS_TEXT, status);
		return el('span', {
			class: `status status-${known ? status : 'unknown'}`,
			dataset: { role: 'status' },
			text: known ? STATUS_TEXT[status] : String(status),
		});
	}

	function meta(label, value, extraClass = '') {
		return el('div', { class: `meta ${extraClass}`.trim() }, el('dt', { text: label }), el('dd', {}, value));
	}

	// "Name (email)" from what the bootstrap job stored about the account.
	function accountText(metadata) {
		if (!metadata || typeof metadata !== 'object') return '';
		const a = metadata.account && typeof metadata.account === 'object' ? metadata.account : metadata;
		const pick = (...keys) => keys.map((k) => a[k]).find((v) => typeof v === 'string' && v) || '';
		const name = pick('name', 'login', 'preferred_username', 'username', 'account_name');
		const email = pick('email');
		if (name && email && name !== email) return `${name} (${email})`;
		return name || email;
	}

	function connectionItem(i) {
		const name = displayName(i.provider);
		const busy = state.busy.has(i.id);
		const oauth = i.auth_type === 'oauth2';
		const revoked = i.status === 'revoked';
		const li = el('li', {
			class: `connection card${busy ? ' busy' : ''}`,
			dataset: { integrationId: i.id, provider: i.provider, connection: i.connection, status: i.status },
			'aria-busy': busy ? 'true' : null,
		});
		li.append(el('div', { class: 'card-head' },
			badge(i.provider, name),
			el('div', { class: 'card-title' },
				el('h3', { text: name, title: name }),
				el('span', { class: 'muted small', text: `${i.connection === 'default' ? 'default connection' : i.connection} · ${AUTH_TYPE_TEXT[i.auth_type] || i.auth_type}` })),
			statusPill(i.status)));

		const dl = el('dl', { class: 'metas' });
		if (oauth) dl.append(meta(i.expires_at && new Date(i.expires_at) < new Date() ? 'Expired' : 'Expires', timeEl(i.expires_at, 'no expiry')));
		dl.append(meta('Last check', timeEl(i.last_health_check_at, 'not checked yet')));
		if (oauth) dl.append(meta('Last refresh', timeEl(i.last_refreshed_at, 'not refreshed yet')));
		dl.append(meta('Connected', timeEl(i.created_at)));
		if (Array.isArray(i.scopes) && i.scopes.length) dl.append(meta('Scopes', el('span', { class: 'scopes', text: i.scopes.join(' ') })));
		const account = accountText(i.metadata);
		if (account) dl.append(meta('Account', el('span', { text: account }), 'meta-wide'));
		li.append(dl);

		if (i.last_error && typeof i.last_error === 'object') {
			const code = typeof i.last_error.code === 'string' ? i.last_error.code : 'error';
			const msg = typeof i.last_error.message === 'string' ? i.last_error.message : '';
			li.append(el('p', { class: 'last-error', dataset: { role: 'last-error' } },
				el('strong', { text: 'Last error: ' }), msg || code, el('code', { class: 'small', text: ` (${code})` })));
		}

		const actions = el('div', { class: 'actions' });
		// expired and error connections need the user: Reconnect comes first
		const needsUser = i.status === 'expired' || i.status === 'error';
		actions.append(el('button', {
			type: 'button', class: needsUser ? 'btn btn-primary' : 'btn', disabled: busy, onclick: () => reconnect(i),
			dataset: { action: 'reconnect' }, text: revoked ? 'Connect again' : 'Reconnect',
		}));
		if (oauth && (i.status === 'connected' || i.status === 'error')) {
			actions.append(el('button', {
				type: 'button', class: 'btn', disabled: busy, onclick: () => refresh(i),
				dataset: { action: 'refresh' }, text: 'Refresh',
			}));
		}
		if (!revoked) {
			actions.append(confirmButton('Disconnect', 'Confirm disconnect', () => disconnect(i),
				{ disabled: busy, dataset: { action: 'disconnect' } }));
		} else {
			actions.append(confirmButton('Remove', 'Confirm remove', () => remove(i),
				{ disabled: busy, dataset: { action: 'remove' } }));
		}
		const logsOpen = state.openLogs.has(i.id);
		actions.append(el('button', {
			type: 'button', class: 'btn btn-quiet', onclick: () => toggleLogs(i),
			'aria-expanded': logsOpen ? 'true' : 'false', dataset: { action: 'activity' },
			text: logsOpen ? 'Hide activity' : 'Activity',
		}));
		li.append(actions);

		const key = `integration:${i.id}`;
		if (state.openForm === key && !oauth) li.append(credentialsForm(i.provider, i.auth_type, key, i.connection));
		if (logsOpen) li.append(logsPanel(i.id));
		return li;
	}

	const logCache = new Map(); // integration id -> { logs } | { error } | { loading }

	function logsPanel(id) {
		const entry = logCache.get(id) || { loading: true };
		const box = el('div', { class: 'logs', dataset: { role: 'logs' } }, el('h4', { text: 'Recent activity' }));
		if (entry.loading) box.append(el('p', { class: 'muted', text: 'Loading…' }));
		else if (entry.error) box.append(el('p', { class: 'last-error', text: entry.error }));
		else if (!entry.logs.length) box.append(el('p', { class: 'muted', text: 'No activity recorded yet.' }));
		else {
			const ol = el('ol', { class: 'log-list' });
			for (const l of entry.logs) {
				const level = ['debug', 'info', 'warn', 'error'].includes(l.level) ? l.level : 'info';
				ol.append(el('li', { class: `log log-${level}` },
					el('span', { class: `level level-${level}`, text: level }),
					el('span', { class: 'log-message', text: typeof l.message === 'string' ? l.message : '' }),
					el('code', { class: 'log-action small', text: typeof l.action === 'string' ? l.action : '' }),
					timeEl(l.created_at)));
			}
			box.append(ol);
		}
		return box;
	}

	async function loadLogs(id) {
		logCache.set(id, { loading: true });
		renderConnections();
		try {
			const data = await api('GET', `/api/integrations/${encodeURIComponent(id)}/logs?limit=${LOG_LIMIT}`);
			logCache.set(id, { logs: Array.isArray(data.logs) ? data.logs : [] });
		} catch (err) {
			logCache.set(id, { error: errorText(err) });
		}
		renderConnections();
	}

	function renderConnections() {
		const list = $('connections');
		const note = $('connections-note');
		list.replaceChildren();
		$('reload').disabled = !state.token;
		if (!state.token) {
			note.textContent = 'Sign in to see your connections.';
			return;
		}
		if (!state.integrations.length) {
			note.textContent = 'No connections yet: connect a provider below.';
			return;
		}
		note.textContent = '';
		for (const i of state.integrations) list.append(connectionItem(i));
	}

	function providerItem(p) {
		const configured = p.configured === true;
		const busy = state.busy.has(p.name);
		const key = `provider:${p.name}`;
		const mine = state.integrations.filter((i) => i.provider === p.name && i.status !== 'revoked');
		const li = el('li', { class: `provider card${configured ? '' : ' unconfigured'}`, dataset: { provider: p.name, authType: p.auth_type } });
		li.append(el('div', { class: 'card-head' },
			badge(p.name, p.display_name || p.name),
			el('div', { class: 'card-title' },
				el('h3', { text: p.display_name || p.name, title: p.display_name || p.name }),
				el('span', { class: 'muted small', text: AUTH_TYPE_TEXT[p.auth_type] || p.auth_type }))));
		let label = 'Connect';
		if (mine.length) label = 'Add account';
		const usable = p.auth_type !== 'oauth2' || configured;
		const actions = el('div', { class: 'actions' },
			el('button', {
				type: 'button', class: 'btn btn-primary', disabled: busy || !usable,
				onclick: () => connectProvider(p), dataset: { action: 'connect' }, text: label,
			}));
		if (!usable) actions.append(el('span', { class: 'muted small', text: 'Not configured on this server' }));
		else if (mine.length) actions.append(el('span', { class: 'muted small', text: `${mine.length} connected` }));
		li.append(actions);
		if (state.openForm === key) li.append(credentialsForm(p.name, p.auth_type, key, null));
		return li;
	}

	function renderProviders() {
		const list = $('providers');
		const filter = $('filter').value.trim().toLowerCase();
		list.replaceChildren();
		const shown = state.providers.filter((p) => !filter
			|| p.name.toLowerCase().includes(filter)
			|| String(p.display_name || '').toLowerCase().includes(filter));
		// configured providers first, then by name
		shown.sort((a, b) => (b.configured === true) - (a.configured === true)
			|| String(a.display_name || a.name).localeCompare(String(b.display_name || b.name)));
		for (const p of shown) list.append(providerItem(p));
		if (!state.providers.length) return;
		$('providers-note').textContent = shown.length ? '' : 'No provider matches the filter.';
	}

	function renderAll() {
		renderSession();
		renderConnections();
		renderProviders();
	}

	// ---------------------------------------------------------------- loading

	async function loadProviders() {
		try {
			const data = await api('GET', '/api/providers');
			state.providers = Array.isArray(data.providers)
				? data.providers.filter((p) => p && typeof p.name === 'string') : [];
			$('providers-note').textContent = '';
		} catch (err) {
			$('providers-note').textContent = `The provider catalog could not be loaded: ${errorText(err)}`;
		}
	}

	async function loadIntegrations() {
		if (!state.token) return;
		try {
			const data = await api('GET', '/api/integrations');
			state.integrations = Array.isArray(data.integrations) ? data.integrations : [];
			for (const id of state.openLogs) {
				if (state.integrations.some((i) => i.id === id)) loadLogs(id);
				else state.openLogs.delete(id);
			}
		} catch (err) {
			if (state.token) $('connections-note').textContent = `Your connections could not be loaded: ${errorText(err)}`;
			return;
		}
		renderAll();
	}

	// The outcome the OAuth callback appended to this page's address
	// (?provider=..&status=connected|error&error=<code>), shown once.
	function callbackOutcome() {
		const q = new URLSearchParams(location.search);
		const status = q.get('status');
		if (status === null && q.get('provider') === null) return null;
		history.replaceState(null, '', location.pathname + location.hash);
		const provider = q.get('provider') || '';
		const code = q.get('error') || '';
		return { provider, status, code: /^[a-z0-9_]{1,64}$/.test(code) ? code : '' };
	}

	function showOutcome(o) {
		const name = displayName(o.provider);
		if (o.status === 'connected') {
			flash('success', `Connected ${name}.`);
			return;
		}
		if (o.status === 'error') {
			const text = CALLBACK_ERRORS[o.code];
			flash('error', text ? text(name) : `Connecting ${name} failed${o.code ? ` (${o.code})` : ''}. Please try again.`, { sticky: true });
		}
	}

	async function main() {
		adoptFragmentToken();
		if (!state.token) setToken(sessionStorage.getItem(TOKEN_KEY));
		const outcome = callbackOutcome();

		$('flash-close').addEventListener('click', () => { $('flash').hidden = true; });
		$('sign-out').addEventListener('click', () => signOut(null));
		$('reload').addEventListener('click', () => { loadIntegrations(); });
		$('filter').addEventListener('input', renderProviders);
		$('signin-form').addEventListener('submit', (ev) => {
			ev.preventDefault();
			const input = $('signin-token');
			if (!setToken(input.value.trim())) {
				flash('error', 'That is not a JWT.', { sticky: true });
				return;
			}
			input.value = '';
			$('flash').hidden = true;
			renderSession();
			loadIntegrations();
		});

		if (state.token && tokenExpired()) signOut('Your token has expired. Sign in again with a fresh link.');
		renderAll();
		await loadProviders();
		renderAll();
		if (outcome) showOutcome(outcome);
		await loadIntegrations();
		document.body.dataset.ready = 'true';
	}

	main();
})();
