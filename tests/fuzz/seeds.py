#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets into tests/fuzz/corpus/<name>/.

Seeds are small, real-looking inputs: tokens signed with the harnesses' fixed
test secret and timestamps around their fixed NOW, signed webhook deliveries,
token responses in JSON and form encoding, env files, catalogs. Deterministic:
re-running rewrites the same files. The envelope seeds (mode 0 of
fuzz_envelope) are sealed by the library itself: see README.md.

    python3 tests/fuzz/seeds.py
"""
import base64
import hashlib
import hmac
import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
ROOT = os.path.dirname(os.path.dirname(HERE))

NOW = 1700000000
JWT_SECRET = b"fuzz-jwt-secret-of-at-least-32-characters"
WH_SECRET = b"fuzz-webhook-secret-0123456789"
STD_KEY = bytes((i * 7 + 3) & 0xFF for i in range(32))
USER = "0b0e8f5c-3b7a-4c61-9d7e-2f1a6c9e4b10"
INTEGRATION = "6a0f1d8e-2b4c-4e7a-9f13-5c8d2e6b0a91"


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def write(target, name, data, keep=False):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def jwt(header, payload, secret=JWT_SECRET):
    h = b64url(json.dumps(header, separators=(",", ":")).encode())
    p = b64url(json.dumps(payload, separators=(",", ":")).encode())
    sig = hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64url(sig)}"


HS = {"alg": "HS256", "typ": "JWT"}
USER_CLAIMS = {"sub": USER, "role": "authenticated", "aud": "authenticated", "iat": NOW - 10,
               "exp": NOW + 3600, "email": "ada@example.com"}
SERVICE_CLAIMS = {"role": "service_role", "iss": "supabase", "iat": NOW - 10, "exp": NOW + 3600}


def codec():
    write("codec", "b64_std", b"\x00\x00" + b"aGVsbG8gd29ybGQ=")
    write("codec", "b64_std_key", b"\x00\x00" + base64.b64encode(bytes(range(32))))
    write("codec", "b64_url_key", b"\x01\x00" + b64url(bytes(range(200, 232))).encode())
    write("codec", "b64_url_jwt_sig", b"\x01\x00" + jwt(HS, USER_CLAIMS).split(".")[2].encode())
    write("codec", "hex_mac", b"\x02\x00" + hashlib.sha256(b"x").hexdigest().upper().encode())
    write("codec", "b64_short_buffer", b"\x80\x05" + b"aGVsbG8gd29ybGQ=")
    write("codec", "hex_short_buffer", b"\x82\x03" + b"00ff10ab")
    write("codec", "b64_bad_padding", b"\x00\x00" + b"aGVsbG8=x==")
    write("codec", "b64_leftover_bits", b"\x00\x00" + b"aGVsbG9=")


def url():
    write("url", "form_value", b"\x01\x00" + b"abc%20def+ghi%2B%2F%3D")
    write("url", "query_state", b"\x01\x00" + b"state=x8N3kQ-_4fA&code=4%2F0AX4XfWg")
    write("url", "uuid", b"\x00\x00" + USER.encode())
    write("url", "uuid_upper", b"\x00\x00" + USER.upper().encode())
    write("url", "path_traversal", b"\x00\x00" + b"%2E%2E%2Fetc%2Fpasswd")
    write("url", "nul_escape", b"\x00\x00" + b"abc%00def")
    write("url", "bad_escape", b"\x00\x00" + b"100%zz%4")
    write("url", "utf8", b"\x01\x00" + b"caf%C3%A9+%E2%9C%93")
    write("url", "short_buffer", b"\x81\x04" + b"a%20b%20c%20d")


def jwt_seeds():
    write("jwt", "user", b"\x00" + jwt(HS, USER_CLAIMS).encode())
    write("jwt", "service", b"\x00" + jwt(HS, SERVICE_CLAIMS).encode())
    write("jwt", "anon", b"\x00" + jwt(HS, {"role": "anon", "iss": "supabase", "exp": NOW + 60}).encode())
    write("jwt", "alg_none", b"\x00" + (jwt({"alg": "none"}, USER_CLAIMS).rsplit(".", 1)[0] + ".").encode())
    write("jwt", "hs512_header", b"\x00" + jwt({"alg": "HS512", "typ": "JWT"}, USER_CLAIMS).encode())
    write("jwt", "wrong_secret", b"\x00" + jwt(HS, USER_CLAIMS, b"another-secret-of-32-characters!!").encode())
    write("jwt", "expired", b"\x00" + jwt(HS, {**USER_CLAIMS, "exp": NOW - 3600}).encode())
    for name, header, payload in [
        ("claims_user", HS, USER_CLAIMS),
        ("claims_service", HS, SERVICE_CLAIMS),
        ("claims_aud_array", HS, {**USER_CLAIMS, "aud": ["other", "authenticated"]}),
        ("claims_nbf", {"alg": "HS256"}, {**USER_CLAIMS, "nbf": NOW + 10}),
        ("claims_crit", {"alg": "HS256", "crit": ["b64"]}, USER_CLAIMS),
        ("claims_kid", {"alg": "HS256", "kid": "k1", "jku": "https://evil.example/jwks"}, USER_CLAIMS),
        ("claims_dup_keys", HS, None),
    ]:
        p = json.dumps(payload, separators=(",", ":")) if payload else \
            '{"role":"service_role","role":"authenticated","exp":%d}' % (NOW + 60)
        write("jwt", name, b"\x01" + json.dumps(header, separators=(",", ":")).encode() + b"\n" + p.encode())
    h = b64url(b'{"alg":"HS256"}')
    p = b64url(json.dumps(USER_CLAIMS).encode())
    write("jwt", "segments", b"\x02" + f"{h}.{p}".encode())


def json_seeds():
    bodies = {
        "store_api_key": {"provider": "openai", "auth_type": "api_key",
                          "credentials": {"api_key": "sk-proj-4f9Qx"}, "metadata": {"team": "ml"}},
        "store_basic": {"provider": "twilio", "auth_type": "basic", "user_id": USER,
                        "credentials": {"username": "AC1f2e", "password": "pw"}},
        "store_oauth2": {"provider": "github", "auth_type": "oauth2", "connection": "work",
                         "credentials": {"access_token": "gho_abc", "refresh_token": "ghr_def",
                                         "token_type": "bearer", "expires_in": 3600,
                                         "scope": "repo read:user"}},
        "get_by_id": {"integration_id": INTEGRATION},
        "get_by_name": {"provider": "github", "connection": "default", "user_id": USER},
        "refresh_force": {"integration_id": INTEGRATION, "force": True},
    }
    for name, body in bodies.items():
        write("json", name, json.dumps(body))
    write("json", "escapes", '{"provider":"git\\u0068ub","connection":"a\\u0000b","user_id":"\\ud83d\\ude00"}')
    write("json", "trailing", '{"provider":"github"} {"x":1}')
    write("json", "nested", '{"metadata":{"a":{"b":{"c":[1,2,{"d":null}]}}},"provider":"x"}')
    write("json", "not_object", '["provider","github"]')
    write("json", "numbers", '{"expires_in":1e308,"force":false,"provider":-0.0}')


def token_response():
    ok = {"access_token": "ya29.a0AfH6SM", "token_type": "Bearer", "expires_in": 3599,
          "refresh_token": "1//0gLx", "scope": "openid email", "id_token": "eyJhbGciOi.x.y"}
    write("token_response", "json_ok", b"\x00" + json.dumps(ok).encode())
    write("token_response", "json_charset", b"\x0a" + json.dumps({**ok, "expires_in": "3600"}).encode())
    write("token_response", "form_ok", b"\x14" +
          b"access_token=gho_16C7e42F292c6912E7710c838347Ae178B4a&scope=repo%2Cgist&token_type=bearer")
    write("token_response", "text_plain_form", b"\x1e" +
          b"access_token=xoxb-17653672481&token_type=bearer&expires_in=43200&refresh_token=xoxe-1-abc")
    write("token_response", "invalid_grant", b"\x03" +
          json.dumps({"error": "invalid_grant", "error_description": "Bad Request"}).encode())
    write("token_response", "form_error", b"\x17" + b"error=bad_verification_code&error_description=The+code+is+incorrect")
    write("token_response", "rate_limited", b"\x06" + b'{"error":"slow_down"}')
    write("token_response", "html", b"\x28" + b"<html><body>502 Bad Gateway</body></html>")
    write("token_response", "leading_space", b"\x32" + b'  \n{"access_token":"a","token_type":"b"}')


def whmac(key, msg):
    return hmac.new(key, msg, hashlib.sha256).digest()


def webhook():
    body = b'{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","type":"payment_intent.succeeded","event_id":"Ev061","event":{"type":"app_mention"}}'
    ts = str(NOW).encode()
    gh = b'{"ref":"refs/heads/main","repository":{"full_name":"octo/hello"}}'
    # sign mode (0x80): "@@" becomes the right MAC
    write("webhook", "github_sign", b"\x80X-Hub-Signature-256: sha256=@@\nX-GitHub-Delivery: 72d3162e-cc78-11e3-81ab-4c9367dc0958\nX-GitHub-Event: push\n\n" + gh)
    write("webhook", "stripe_sign", b"\x81Stripe-Signature: t=1700000000,v1=@@,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39\n\n" + body)
    write("webhook", "slack_sign", b"\x82X-Slack-Request-Timestamp: 1700000000\nX-Slack-Signature: v0=@@\n\n" +
          b'{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}')
    write("webhook", "standard_sign", b"\x83webhook-id: msg_2KWPBgLlAfxdpx2AI54pPJ85f4W\nwebhook-timestamp: 1700000000\nwebhook-signature: v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg== v1,@@\n\n" + body)
    write("webhook", "svix_sign", b"\x83svix-id: msg_p5jXN8AQM9LWM0D4loKWxJek\nsvix-timestamp: 1699999990\nsvix-signature: v1,@@\n\n" + body)
    write("webhook", "shopify_sign", b"\x84X-Shopify-Hmac-Sha256: @@\nX-Shopify-Topic: orders/create\nX-Shopify-Webhook-Id: b54557e4-bdd9-4b37-8a5f-bf7d70bcd043\n\n" + b'{"id":820982911946154508,"email":"jon@example.com"}')
    write("webhook", "hmac_ts_sign", b"\x85X-Signature: sha256=@@\nX-Timestamp: 1700000100\nX-Event-Id: ev_42\n\n" + body)
    write("webhook", "hmac_b64_sign", b"\x86X-Signature: @@\n\n" + body)
    write("webhook", "hmac_bare_sign", b"\x87X-Sig: @@\nX-Event-Id: ev_43\n\n" + body)
    # the same deliveries with their real MACs (verify without sign mode)
    write("webhook", "github_real", b"\x00X-Hub-Signature-256: sha256=" + whmac(WH_SECRET, gh).hex().encode() +
          b"\nX-GitHub-Delivery: 72d3162e-cc78-11e3-81ab-4c9367dc0958\nX-GitHub-Event: push\n\n" + gh)
    write("webhook", "stripe_real", b"\x01Stripe-Signature: t=1700000000,v1=" +
          whmac(WH_SECRET, ts + b"." + body).hex().encode() + b"\n\n" + body)
    write("webhook", "slack_real", b"\x02X-Slack-Request-Timestamp: 1700000000\nX-Slack-Signature: v0=" +
          whmac(WH_SECRET, b"v0:" + ts + b":" + body).hex().encode() + b"\n\n" + body)
    sig = base64.b64encode(whmac(STD_KEY, b"msg_1." + ts + b"." + body))
    write("webhook", "standard_real", b"\x03webhook-id: msg_1\nwebhook-timestamp: 1700000000\nwebhook-signature: v1," + sig + b"\n\n" + body)
    write("webhook", "shopify_real", b"\x04X-Shopify-Hmac-Sha256: " + base64.b64encode(whmac(WH_SECRET, body)) + b"\n\n" + body)
    # refusals: duplicate header, stale timestamp, mixed families
    write("webhook", "github_duplicate", b"\x80X-Hub-Signature-256: sha256=@@\nX-Hub-Signature-256: sha256=00\n\n" + gh)
    write("webhook", "slack_stale", b"\x82X-Slack-Request-Timestamp: 1699990000\nX-Slack-Signature: v0=@@\n\n" + body)
    write("webhook", "standard_mixed", b"\x83webhook-id: msg_1\nsvix-timestamp: 1700000000\nsvix-signature: v1,@@\n\n" + body)
    write("webhook", "stripe_two_t", b"\x81Stripe-Signature: t=1700000000,t=1700000001,v1=@@\n\n" + body)


def envelope_text_seeds():
    ctx = f"credentials.secret|{INTEGRATION}|{USER}|github"
    write("envelope", "seal_oauth", b"\x01" + ctx.encode() + b"\n" +
          json.dumps({"access_token": "gho_x", "refresh_token": "ghr_y", "token_type": "bearer"}).encode())
    write("envelope", "seal_webhook_list", b"\x01" + f"integration_webhooks.secrets|{INTEGRATION}|{USER}|stripe".encode() +
          b'\n["whsec_old","whsec_new"]')
    write("envelope", "seal_empty", b"\x01\n")
    write("envelope", "keys_hex_and_previous", b"\x02" + bytes(range(32)).hex().encode() + b"\n" +
          base64.b64encode(bytes(range(1, 33))) + b", " + b64url(bytes(range(2, 34))).encode())
    write("envelope", "keys_b64_padded", b"\x02" + base64.b64encode(bytes(range(5, 37))) + b"\n")
    write("envelope", "keys_short", b"\x02c2hvcnQ=\n" + bytes(range(32)).hex().encode())
    write("envelope", "malformed", b"\x00v1.0000000g.AAAA")


def config():
    key = base64.b64encode(bytes(range(32))).decode()
    prev = bytes(range(1, 33)).hex()
    write("config", "full", f"""# intauth configuration
DATABASE_URL=postgresql://intauth_app:s3cret@127.0.0.1:5432/intauth?sslmode=disable
JWT_SECRET=super-secret-jwt-token-with-at-least-32-characters-long
CREDENTIAL_ENCRYPTION_KEY={key}
CREDENTIAL_ENCRYPTION_PREVIOUS_KEYS={prev}
PUBLIC_BASE_URL=https://auth.example.com/
ALLOWED_REDIRECT_ORIGINS=https://app.example.com,http://localhost:5173
CORS_ALLOWED_ORIGINS=https://app.example.com
GITHUB_CLIENT_ID=Iv1.8a61f9b3a7aba766
GITHUB_CLIENT_SECRET="1b2c3d4e5f # not a comment"
LOG_LEVEL=debug
MAX_BODY_BYTES=65536
""")
    write("config", "quotes_export_crlf", "export JWT_SECRET='single quoted value of 32+ characters!'\r\n"
          "DATABASE_URL=\"host=/tmp port=5432 dbname=intauth\"\r\n"
          "CREDENTIAL_ENCRYPTION_KEY=" + bytes(range(32)).hex() + "  # the key\r\n"
          "PUBLIC_BASE_URL=http://127.0.0.1:8080\r\nOAUTH_BIND_BROWSER=0\r\nCORS_ALLOWED_ORIGINS=*\r\n")
    write("config", "escapes", 'A="line\\nbreak \\"q\\" \\\\ \\t"\nB=\'raw \\n\'\nC=x#not-comment\nD=\n')
    write("config", "bad_line", "JWT_SECRET=x\nnot a key value line\n")
    write("config", "bad_values", "HTTP_TIMEOUT_MS=-1\nREFRESH_WINDOW_SECONDS=99999999999999999999\n"
          "PUBLIC_BASE_URL=https://a.example/?q=1\n")
    write("config", "partial", "DATABASE_URL=postgres:///intauth\nLOG_LEVEL=warn\nHEALTHCHECK_CONCURRENCY=8\n")


def providers():
    src = os.path.join(ROOT, "providers", "providers.json")
    if os.path.exists(src):
        shutil.copyfile(src, os.path.join(CORPUS, "providers", "catalog"))
    small = {
        "shopify": {"display_name": "Shopify", "auth_type": "oauth2",
                    "authorization_url": "https://{shop}.myshopify.com/admin/oauth/authorize",
                    "token_url": "https://{shop}.myshopify.com/admin/oauth/access_token",
                    "default_scopes": ["read_products"], "scope_separator": ",", "pkce": False,
                    "params": {"shop": "^[a-z0-9][a-z0-9-]{0,59}$"}, "webhook": {"scheme": "shopify"}},
        "openai": {"display_name": "OpenAI", "auth_type": "api_key"},
        "acme": {"display_name": "Acme", "auth_type": "oauth2",
                 "authorization_url": "http://127.0.0.1:9999/auth", "token_url": "http://localhost:9999/token",
                 "revocation_url": "https://[2001:db8::1]/revoke", "issuer": "http://127.0.0.1:9999",
                 "token_endpoint_auth": "client_secret_basic",
                 "authorization_params": {"access_type": "offline", "prompt": "consent"},
                 "webhook": {"scheme": "hmac", "signature_header": "X-Acme-Signature",
                             "signature_prefix": "sha256=", "encoding": "base64",
                             "timestamp_header": "X-Acme-Timestamp", "event_id_header": "X-Acme-Event"}},
    }
    write("providers", "small", json.dumps(small, indent=1))
    extra = {"openai": {"display_name": "OpenAI (override)", "auth_type": "basic"},
             "zzz": {"display_name": "Zed", "auth_type": "api_key"}}
    write("providers", "with_extra", json.dumps(small) + "\n--extra--\n" + json.dumps(extra))
    write("providers", "private_host", '{"x":{"display_name":"X","auth_type":"oauth2",'
          '"authorization_url":"https://10.0.0.1/a","token_url":"https://[::ffff:127.0.0.1]/t"}}')
    write("providers", "bad_name", '{"Bad-Name":{"display_name":"X","auth_type":"api_key"}}')


def request():
    tok = jwt(HS, {**USER_CLAIMS, "iat": 1, "exp": 4102444800})
    write("request", "store", f"\x00/functions/v1/storeCredentials\n\n\nBearer {tok}\nCONTENT_TYPE=application/json")
    write("request", "logs", f"\x00/api/integrations/{INTEGRATION}/logs?limit=10\nlimit=10&x=%20y+z\n\nBearer {tok}")
    write("request", "callback", "\x00/api/auth/github/callback?code=abc\ncode=4%2F0AX4Xf&state=x8N3kQ-_4fA&iss=https%3A%2F%2Fgithub.com\n"
          "intauth_flow=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM; theme=dark\n")
    write("request", "webhook_dup", "\x00/functions/v1/webhooks/github/" + INTEGRATION + "\n\n\n\n"
          "HTTP_X_HUB_SIGNATURE_256=sha256=00\nHTTP_X_HUB_SIGNATURE_256=sha256=11\nHTTP_STRIPE_SIGNATURE=t=1,v1=2")
    write("request", "document_uri", "\x01/api/integrations/%2F..%2Fetc\n\n")
    write("request", "service_token", "\x00/functions/v1/getCredentials\n\n\nbearer  " +
          jwt(HS, {**SERVICE_CLAIMS, "exp": 4102444800}))


if __name__ == "__main__":
    for t in ("codec", "url", "jwt", "json", "token_response", "webhook", "envelope", "config", "providers", "request"):
        os.makedirs(os.path.join(CORPUS, t), exist_ok=True)
    codec()
    url()
    jwt_seeds()
    json_seeds()
    token_response()
    webhook()
    envelope_text_seeds()
    config()
    providers()
    request()
