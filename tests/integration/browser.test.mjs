// The Integrations page (www/, served by nginx at /) in a real browser:
// Debian's chromium, headless, driven by playwright-core. A fresh user signs
// in with the #token= link, clicks Connect on the test OAuth server's provider
// (tests/oauth/server.mjs: automatic login and consent), comes back through
// intauth's callback to the page and sees the connection "Connected"; then
// Disconnect revokes it. Also: the callback's error messages, query text that
// never becomes markup, and no Content-Security-Policy violations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BASE_URL, STACK_DIR, get, logTail, newUser, show, sleep } from './lib.mjs';

const CHROMIUM = '/usr/bin/chromium';
const SKIP = existsSync(CHROMIUM) ? false : `${CHROMIUM} is absent: install Debian's chromium package (scripts/install-deps)`;
const STEP_MS = 15000;

const ARGS = [
	'--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
	'--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** SIGKILL to the processes whose command line names this run's profile directory. */
function killProfileProcesses(profile) {
	for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
		let cmd = '';
		try {
			cmd = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
		} catch {
			continue;
		}
		if (cmd.includes(`--user-data-dir=${profile}`)) {
			try {
				process.kill(Number(pid), 'SIGKILL');
			} catch {
				/* gone meanwhile */
			}
		}
	}
}

async function integrationsOf(user) {
	const r = await get('/api/integrations', { token: user.token });
	assert.equal(r.status, 200, show(r));
	return r.json.integrations;
}

test('Integrations page in Chromium: connect through the OAuth server, see Connected, disconnect', { skip: SKIP, timeout: 55000 }, async (t) => {
	const { chromium } = await import('playwright-core');
	const profile = mkdtempSync(join(tmpdir(), 'intauth-chromium-'));
	// --user-data-dir is what launchPersistentContext passes for `profile`.
	const context = await chromium.launchPersistentContext(profile, {
		executablePath: CHROMIUM,
		headless: true,
		args: ARGS,
		viewport: { width: 1280, height: 900 },
		timeout: 30000,
	});
	t.after(async () => {
		// A graceful close takes seconds on a busy machine: wait a little,
		// then end the browser's processes (found by this run's own profile).
		const closed = context.close().then(() => true, () => true);
		if (!(await Promise.race([closed, sleep(5000).then(() => false)]))) killProfileProcesses(profile);
		rmSync(profile, { recursive: true, force: true });
	});
	const page = context.pages()[0] || (await context.newPage());
	page.setDefaultTimeout(STEP_MS);

	const problems = [];
	page.on('console', (m) => {
		if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) problems.push(m.text());
	});
	page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));

	const user = newUser();
	await page.goto(`${BASE_URL}/#token=${user.token}`);

	// The token left the address bar at once, and the page shows who is signed in.
	await page.locator('#session:not([hidden])').waitFor();
	assert.ok(!page.url().includes(user.token), `the token is still in the URL: ${page.url()}`);
	assert.ok(!page.url().includes('#token'), `the fragment is still in the URL: ${page.url()}`);
	assert.match(await page.locator('#session-who').textContent(), new RegExp(user.id));

	// The catalog is there, including the test provider, configured.
	const card = page.locator('li.provider[data-provider="testoidc"]');
	await card.waitFor();
	assert.equal(await card.locator('h3').textContent(), 'Test OIDC');
	assert.equal(await page.locator('li.provider[data-provider="openai"] h3').count(), 1, 'openai (api_key) missing from the catalog');
	assert.equal(await page.locator('#connections li.connection').count(), 0, 'a fresh user has no connections');

	// Connect: auth-start, the OAuth server (login + consent), the callback, back here.
	await card.locator('button[data-action="connect"]').click();
	const conn = page.locator('li.connection[data-provider="testoidc"]');
	try {
		await conn.locator('.status-connected').waitFor({ timeout: 30000 });
	} catch (e) {
		throw new Error(`no Connected testoidc connection on the page (at ${page.url()}): ${e.message}\n${logTail(10)}`);
	}
	assert.equal(await conn.locator('[data-role="status"]').textContent(), 'Connected');
	assert.equal(new URL(page.url()).origin, BASE_URL, 'the browser did not come back to the page');
	assert.equal(new URL(page.url()).search, '', 'the callback outcome stayed in the address bar');
	assert.match(await page.locator('#flash-text').textContent(), /^Connected Test OIDC\.$/);
	assert.equal(await page.locator('#flash').getAttribute('data-kind'), 'success');

	// The page shows what the API says.
	const [row] = (await integrationsOf(user)).filter((i) => i.provider === 'testoidc');
	assert.ok(row, 'the API has no testoidc integration for the user');
	assert.equal(row.status, 'connected');
	assert.equal(await conn.getAttribute('data-integration-id'), row.id);
	assert.ok(row.expires_at, 'a connected OAuth integration has an expiry');
	assert.equal(await conn.locator(`time[datetime="${row.expires_at}"]`).count(), 1, 'expires_at is not shown');

	// Its recent activity comes from GET /api/integrations/{id}/logs.
	await conn.locator('button[data-action="activity"]').click();
	await conn.locator('.log-list li').first().waitFor();
	const logText = await conn.locator('.log-list').textContent();
	assert.match(logText, /Connected through OAuth\./, `activity: ${logText}`);

	const shot = join(STACK_DIR, 'integrations-page.png');
	await page.screenshot({ path: shot });
	assert.ok(statSync(shot).size > 10000, 'the screenshot is (nearly) empty');

	// Disconnect asks for a second click, then revokes.
	const disconnect = conn.locator('button[data-action="disconnect"]');
	await disconnect.click();
	assert.equal(await disconnect.textContent(), 'Confirm disconnect');
	assert.equal((await integrationsOf(user)).find((i) => i.id === row.id).status, 'connected', 'one click disconnected already');
	await disconnect.click();
	await conn.locator('.status-revoked').waitFor();
	assert.equal(await conn.locator('[data-role="status"]').textContent(), 'Revoked');
	assert.match(await page.locator('#flash-text').textContent(), /^Disconnected Test OIDC\./);
	assert.equal((await integrationsOf(user)).find((i) => i.id === row.id).status, 'revoked');
	assert.equal(await conn.locator('button[data-action="disconnect"]').count(), 0, 'a revoked connection still offers Disconnect');

	// The callback's error outcome becomes a human message, and query text
	// never becomes markup (the token now comes from sessionStorage).
	const evil = '<img src=x id=injected>';
	await page.goto(`${BASE_URL}/?provider=${encodeURIComponent(evil)}&status=error&error=access_denied`);
	await page.locator('#flash[data-kind="error"]').waitFor();
	assert.equal(await page.locator('#flash-text').textContent(), 'You declined the request at the provider, so nothing was connected.');
	assert.equal(await page.locator('#injected').count(), 0, 'query text was rendered as HTML');
	assert.equal(new URL(page.url()).search, '', 'the outcome stayed in the address bar');
	await page.locator('li.connection[data-provider="testoidc"] .status-revoked').waitFor();

	assert.deepEqual(problems, [], 'the page had errors or CSP violations');
});
