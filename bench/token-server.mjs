// A tiny OAuth 2.0 token endpoint for `make bench` (the healthCheck run of
// issue 4): answers every refresh_token grant on POST /token with a fresh
// access token and a rotated refresh token, checking only the shape of the
// request (grant type, client id and secret, a refresh token), so the bench
// measures intauth and not an authorization server. Loopback only.
//
//   node bench/token-server.mjs --port N --client-id ID --client-secret S
// Prints "TOKEN_READY <port>" when listening. GET /stats -> {"grants":n,"refused":n}.
import crypto from 'node:crypto';
import http from 'node:http';

const args = process.argv.slice(2);
function arg(name) {
	const i = args.indexOf(name);
	if (i < 0 || i + 1 >= args.length) {
		console.error(`token-server: ${name} is required`);
		process.exit(2);
	}
	return args[i + 1];
}
const port = Number(arg('--port'));
const clientId = arg('--client-id');
const clientSecret = arg('--client-secret');
let grants = 0;
let refused = 0;

function send(res, status, obj) {
	const body = JSON.stringify(obj);
	res.writeHead(status, {
		'Content-Type': 'application/json',
		'Content-Length': Buffer.byteLength(body),
		'Cache-Control': 'no-store',
	});
	res.end(body);
}

const server = http.createServer((req, res) => {
	if (req.method === 'GET' && req.url === '/stats') return send(res, 200, { grants, refused });
	if (req.method !== 'POST' || req.url !== '/token') return send(res, 404, { error: 'not_found' });
	const chunks = [];
	req.on('data', (c) => chunks.push(c));
	req.on('end', () => {
		const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
		let id = form.get('client_id');
		let secret = form.get('client_secret');
		const basic = /^Basic (.+)$/.exec(req.headers.authorization || '');
		if (basic) {
			const [u, p] = Buffer.from(basic[1], 'base64').toString('utf8').split(':');
			id = decodeURIComponent(u.replace(/\+/g, ' '));
			secret = decodeURIComponent((p || '').replace(/\+/g, ' '));
		}
		if (id !== clientId || secret !== clientSecret) {
			refused++;
			return send(res, 401, { error: 'invalid_client' });
		}
		if (form.get('grant_type') !== 'refresh_token' || !form.get('refresh_token')) {
			refused++;
			return send(res, 400, { error: 'unsupported_grant_type' });
		}
		grants++;
		send(res, 200, {
			access_token: 'at_' + crypto.randomBytes(24).toString('base64url'),
			token_type: 'Bearer',
			expires_in: 3600,
			refresh_token: 'rt_' + crypto.randomBytes(24).toString('base64url'),
		});
	});
});
server.keepAliveTimeout = 5000;
server.listen(port, '127.0.0.1', () => console.log(`TOKEN_READY ${port}`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
