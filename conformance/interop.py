#!/usr/bin/env python3
"""Black-box interop check of a running Warden provider with independent Python libraries.

Authlib is the OAuth 2.0 client (client credentials with client_secret_basic,
client_secret_post and private_key_jwt, RFC 7662 introspection, RFC 7009 revocation, the
authorization code flow with PKCE through the real login and consent pages) and the RFC 8414
and OpenID Provider metadata validator; jwcrypto makes the client's key pair and is the JOSE
verifier; dynamic registration (RFC 7591/7592) is plain HTTP with requests. Nothing here
shares code with Warden.

Started by conformance/run.sh, which runs the server and creates the first client; the
`warden` CLI (same data dir, inherited WARDEN_DATA_DIR) creates the others. Phases:

  main     everything, against a provider signing access tokens with ES256 (the default)
  alg      after a restart with keys.access_token_alg = --alg: tokens verify with that alg
  summary  adds up the phases' counts and prints the closing line

Common arguments of main and alg:
  --warden BIN        the warden binary
  --issuer URL        the provider's issuer (http://127.0.0.1:PORT)
  --client FILE       output of `warden client create --json` (client_id, client_secret)
  --scope S           that client's registered scopes (space-separated)
  --audience A        that client's registered audience
  --tally FILE        where the phase appends its counts (one JSON line)

Prints one line per check (`ok`/`FAIL`). A phase exits 1 if any of its checks failed;
`summary --tally FILE --phases N` prints `N passed, M failed` last and exits 1 on any
failure, including a phase that never reported.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import re
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
from html import unescape as html_unescape
from typing import Callable

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc.jwk import ECKey
from jwcrypto import jwk, jwt

# RFC 7517/7518 members that only a private (or symmetric) key has.
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
HTTP_TIMEOUT = 10
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Key type (and curve) each JWS algorithm is used with (RFC 7518 §3, RFC 8037 §3.1).
KEY_TYPE_OF_ALG = {"ES256": ("EC", "P-256"), "RS256": ("RSA", None), "PS256": ("RSA", None),
                   "EdDSA": ("OKP", "Ed25519")}
# For each algorithm, one the verifier must NOT accept in its place (same key type where one
# exists: an RS256 token is no PS256 token).
OTHER_ALG = {"ES256": "RS256", "RS256": "PS256", "PS256": "RS256", "EdDSA": "ES256"}


class Abort(Exception):
    """A failed check that later checks of the same section depend on."""


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, name: str, ok: bool, detail: object = "", fatal: bool = False) -> bool:
        if ok:
            self.passed += 1
            print(f"ok    {name}")
        else:
            self.failed += 1
            print(f"FAIL  {name}: {detail}")
        sys.stdout.flush()
        if not ok and fatal:
            raise Abort(name)
        return ok

    def section(self, title: str, fn: Callable[[], None]) -> None:
        """Runs one independent group of checks; an abort or surprise ends only that group."""
        try:
            fn()
        except Abort as e:
            print(f"      ({title}: skipping the rest of this section after '{e}' failed)")
        except Exception:  # noqa: BLE001 - any surprise is a failure with a traceback
            traceback.print_exc()
            self.check(f"{title}: no unexpected exception", False, "see traceback above")


# --- helpers ----------------------------------------------------------------------------


def b64json(segment: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def header_of(token: str) -> dict:
    return b64json(token.split(".")[0])


def claims_unverified(token: str) -> dict:
    return b64json(token.split(".")[1])


def fetch_jwks(url: str) -> tuple[requests.Response, dict]:
    r = requests.get(url, timeout=HTTP_TIMEOUT)
    return r, (r.json() if r.ok else {})


def verify(token: str, jwks_doc: dict, alg: str = "ES256") -> dict:
    """Verifies the signature with jwcrypto against the published set; returns the claims.

    Only `alg` is accepted, so a token signed with any other algorithm fails here. The kid in
    the header selects the key. Expiry/nbf are checked by jwcrypto.
    """
    keyset = jwk.JWKSet.from_json(json.dumps(jwks_doc))
    t = jwt.JWT(jwt=token, key=keyset, algs=[alg], expected_type="JWS", check_claims={"exp": None})
    return json.loads(t.claims)


def rejects(fn: Callable[[], object]) -> bool:
    try:
        fn()
    except Exception:  # noqa: BLE001 - any refusal counts
        return True
    return False


def oauth_error(resp: requests.Response) -> str | None:
    try:
        return resp.json().get("error")
    except ValueError:
        return None


def warden_json(warden: str, *args: str) -> dict | list:
    """Runs a `warden ... --json` command on the server's data dir (inherited env)."""
    out = subprocess.run([warden, *args, "--json"], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise AssertionError(f"warden {' '.join(args)}: rc={out.returncode} stderr={out.stderr.strip()}")
    return json.loads(out.stdout)


def sent_form(resp: requests.Response) -> dict[str, str]:
    """The form parameters of the request that produced `resp` (what the client really sent)."""
    body = resp.request.body or ""
    if isinstance(body, bytes):
        body = body.decode()
    return dict(urllib.parse.parse_qsl(body))


class Recorder:
    """A requests response hook that keeps the responses of a session's requests."""

    def __init__(self) -> None:
        self.responses: list[requests.Response] = []

    def __call__(self, resp: requests.Response, *args: object, **kwargs: object) -> requests.Response:
        self.responses.append(resp)
        return resp

    def attach(self, session: requests.Session) -> None:
        session.hooks["response"].append(self)


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):
    """Authlib's private_key_jwt client authentication with 60-second assertions.

    Authlib's default assertion lives one hour (Warden accepts up to
    provider.assertion_max_lifetime, 1 hour by default); a short-lived one is the better
    practice, and passing `exp` in its `claims` would pin one `jti` for every request. So
    each request gets a fresh 60-second assertion, still built and signed by Authlib."""

    def sign(self, auth, token_endpoint):  # noqa: ANN001, ANN201 - Authlib's signature
        return private_key_jwt_sign(auth.client_secret, client_id=auth.client_id, token_endpoint=token_endpoint,
                                    alg=self.alg, header=dict(self.headers or {}), expires_in=60)


# --- phase: main ------------------------------------------------------------------------


def phase_main(c: Checks, args: argparse.Namespace) -> None:
    issuer = args.issuer
    with open(args.client) as f:
        client = json.load(f)
    state: dict = {}

    c.section("metadata", lambda: metadata_checks(c, issuer, state))
    if "meta" not in state:
        return
    meta = state["meta"]
    c.section("client_secret_basic", lambda: basic_flow_checks(c, args, meta, client))
    c.section("client_secret_post", lambda: secret_post_checks(c, args, meta))
    c.section("private_key_jwt", lambda: private_key_jwt_checks(c, args, meta))
    c.section("registration", lambda: registration_checks(c, args, meta))
    c.section("dpop", lambda: dpop_checks(c, args, meta))
    c.section("code flow", lambda: code_flow_checks(c, args, meta))


def metadata_checks(c: Checks, issuer: str, state: dict) -> None:
    r = requests.get(f"{issuer}/.well-known/oauth-authorization-server", timeout=HTTP_TIMEOUT)
    c.check("metadata: 200 application/json", r.status_code == 200 and r.headers.get("content-type", "").startswith("application/json"),
            f"{r.status_code} {r.headers.get('content-type')}", fatal=True)
    meta = r.json()
    state["meta"] = meta
    c.check("metadata: issuer is the configured issuer (RFC 8414 §3.3)", meta.get("issuer") == issuer, meta.get("issuer"))
    for ep, path in [("token_endpoint", "/token"), ("jwks_uri", "/jwks"), ("introspection_endpoint", "/introspect"),
                     ("revocation_endpoint", "/revoke"), ("registration_endpoint", "/register")]:
        c.check(f"metadata: {ep}", meta.get(ep) == issuer + path, meta.get(ep))
    grants = meta.get("grant_types_supported", [])
    c.check("metadata: client_credentials in grant_types_supported", "client_credentials" in grants, grants)
    methods = meta.get("token_endpoint_auth_methods_supported", [])
    c.check("metadata: token endpoint auth methods include client_secret_basic, client_secret_post, private_key_jwt",
            {"client_secret_basic", "client_secret_post", "private_key_jwt"} <= set(methods), methods)
    algs = meta.get("token_endpoint_auth_signing_alg_values_supported", [])
    c.check("metadata: assertion signing algs include ES256 and never none",
            "ES256" in algs and "none" not in algs, algs)
    empty = [k for k, v in meta.items() if isinstance(v, list) and not v]
    c.check("metadata: no zero-element array (RFC 8414 §3.2: such claims MUST be omitted)", not empty, empty)

    c.check("metadata: the authorization endpoint is listed, as authorization_code is (RFC 8414 §2)",
            "authorization_code" in grants and meta.get("authorization_endpoint") == issuer + "/authorize", meta.get("authorization_endpoint"))
    try:
        AuthorizationServerMetadata(meta).validate()
        c.check("metadata: Authlib's RFC 8414 validator accepts every member", True)
    except ValueError as e:
        c.check("metadata: Authlib's RFC 8414 validator accepts every member", False, e)

    # OIDC Discovery §4: the same document at the issuer + /.well-known/openid-configuration.
    oidc = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=HTTP_TIMEOUT)
    c.check("metadata: /.well-known/openid-configuration serves the same document",
            oidc.status_code == 200 and oidc.json() == meta, f"{oidc.status_code} {oidc.text[:200]}")
    try:
        OpenIDProviderMetadata(oidc.json()).validate()
        c.check("metadata: Authlib's OpenID Provider metadata validator accepts it (OIDC Discovery §3)", True)
    except ValueError as e:
        c.check("metadata: Authlib's OpenID Provider metadata validator accepts it (OIDC Discovery §3)", False, e)
    c.check("metadata: RS256 among id_token_signing_alg_values_supported (OIDC Discovery §3)",
            "RS256" in meta.get("id_token_signing_alg_values_supported", []), meta.get("id_token_signing_alg_values_supported"))


def basic_flow_checks(c: Checks, args: argparse.Namespace, meta: dict, client: dict) -> None:
    """Client credentials with client_secret_basic, the JWKS, key rotation, introspection and
    revocation: one story, in order."""
    issuer = args.issuer
    client_id, client_secret = client["client_id"], client["client_secret"]
    registered_scopes = args.scope.split()
    audience = args.audience
    token_url, jwks_url = meta["token_endpoint"], meta["jwks_uri"]
    introspect_url, revoke_url = meta["introspection_endpoint"], meta["revocation_endpoint"]

    # --- (a) client credentials with Authlib --------------------------------------------
    want_scope = registered_scopes[0]
    session = OAuth2Session(client_id, client_secret, token_endpoint_auth_method="client_secret_basic",
                            scope=want_scope, default_timeout=HTTP_TIMEOUT)
    tok = session.fetch_token(token_url, grant_type="client_credentials")
    old_token = tok.get("access_token")
    c.check("token: Authlib client_credentials returns an access_token", bool(old_token), tok, fatal=True)
    c.check("token: token_type Bearer", str(tok.get("token_type", "")).lower() == "bearer", tok.get("token_type"))
    c.check("token: expires_in is a positive integer", isinstance(tok.get("expires_in"), int) and tok["expires_in"] > 0,
            tok.get("expires_in"))
    c.check("token: response scope is the requested scope", tok.get("scope") == want_scope, tok.get("scope"))

    raw = requests.post(token_url, data={"grant_type": "client_credentials"}, auth=(client_id, client_secret),
                        timeout=HTTP_TIMEOUT)
    c.check("token: Cache-Control no-store (RFC 6749 §5.1)", "no-store" in raw.headers.get("cache-control", ""),
            dict(raw.headers))
    c.check("token: no scope requested -> all registered scopes",
            raw.ok and sorted(raw.json().get("scope", "").split()) == sorted(registered_scopes), raw.text)

    bad = requests.post(token_url, data={"grant_type": "client_credentials"}, auth=(client_id, "wrong-secret"),
                        timeout=HTTP_TIMEOUT)
    c.check("token: wrong secret -> 401 invalid_client with WWW-Authenticate Basic (RFC 6749 §5.2)",
            bad.status_code == 401 and oauth_error(bad) == "invalid_client"
            and bad.headers.get("www-authenticate", "").lower().startswith("basic"),
            f"{bad.status_code} {bad.headers.get('www-authenticate')} {bad.text}")
    bad = requests.post(token_url, data={"grant_type": "client_credentials", "scope": "not-registered"},
                        auth=(client_id, client_secret), timeout=HTTP_TIMEOUT)
    c.check("token: unregistered scope -> 400 invalid_scope",
            bad.status_code == 400 and oauth_error(bad) == "invalid_scope", f"{bad.status_code} {bad.text}")

    # --- (b) JWKS + signature with jwcrypto ----------------------------------------------
    r, jwks_doc = fetch_jwks(jwks_url)
    c.check("jwks: 200 with a 'keys' array", r.status_code == 200 and isinstance(jwks_doc.get("keys"), list)
            and len(jwks_doc["keys"]) >= 1, f"{r.status_code} {r.text[:300]}", fatal=True)
    c.check("jwks: jwcrypto parses the set", bool(jwk.JWKSet.from_json(r.text)["keys"]), r.text[:300])
    kids = [k.get("kid") for k in jwks_doc["keys"]]
    c.check("jwks: every key has a unique kid", all(kids) and len(set(kids)) == len(kids), kids)

    # --- (c) no private key material ------------------------------------------------------
    leaked = [(k.get("kid"), sorted(PRIVATE_MEMBERS & k.keys())) for k in jwks_doc["keys"] if PRIVATE_MEMBERS & k.keys()]
    c.check("jwks: no private key members (d, p, q, dp, dq, qi, oth, k)", not leaked, leaked)
    c.check("jwks: jwcrypto sees only public keys",
            all(not jwk.JWK(**k).has_private for k in jwks_doc["keys"]), jwks_doc)

    hdr = header_of(old_token)
    old_kid = hdr.get("kid")
    c.check("jwt: header typ is at+jwt (RFC 9068 §2.1)", hdr.get("typ") in ("at+jwt", "application/at+jwt"), hdr)
    c.check("jwt: header alg ES256", hdr.get("alg") == "ES256", hdr)
    c.check("jwt: header kid is published in the JWKS", old_kid in kids, (old_kid, kids))
    try:
        claims = verify(old_token, jwks_doc)
        c.check("jwt: jwcrypto verifies the signature against the JWKS", True)
    except Exception as e:  # noqa: BLE001
        c.check("jwt: jwcrypto verifies the signature against the JWKS", False, repr(e), fatal=True)
    now = int(time.time())
    aud = claims.get("aud")
    c.check("jwt: iss equals the issuer", claims.get("iss") == issuer, claims.get("iss"))
    c.check("jwt: aud is the client's audience", aud == audience or (isinstance(aud, list) and audience in aud), aud)
    c.check("jwt: exp in the future, consistent with expires_in",
            isinstance(claims.get("exp"), int) and claims["exp"] > now and abs(claims["exp"] - (now + tok["expires_in"])) <= 5,
            (claims.get("exp"), now, tok.get("expires_in")))
    c.check("jwt: iat is now (±60 s)", isinstance(claims.get("iat"), int) and abs(claims["iat"] - now) <= 60,
            (claims.get("iat"), now))
    c.check("jwt: jti is a non-empty string", isinstance(claims.get("jti"), str) and len(claims["jti"]) >= 16,
            claims.get("jti"))
    c.check("jwt: client_id is the client", claims.get("client_id") == client_id, claims.get("client_id"))
    c.check("jwt: sub is the client (client credentials, RFC 9068 §2.2)", claims.get("sub") == client_id, claims.get("sub"))
    c.check("jwt: scope is the granted scope", claims.get("scope") == want_scope, claims.get("scope"))

    tampered = old_token[:-4] + ("AAAA" if not old_token.endswith("AAAA") else "BBBB")
    c.check("jwt: jwcrypto rejects a tampered signature (verifier sanity)", rejects(lambda: verify(tampered, jwks_doc)))

    # --- introspection with Authlib (RFC 7662) -------------------------------------------
    def introspect(token: str) -> dict:
        resp = session.introspect_token(introspect_url, token=token, token_type_hint="access_token")
        if resp.status_code != 200:
            raise AssertionError(f"introspection: HTTP {resp.status_code} {resp.text}")
        return resp.json()

    info = introspect(old_token)
    c.check("introspect: fresh token is active", info.get("active") is True, info)
    c.check("introspect: claims match the JWT",
            all(info.get(k) == claims.get(k) for k in ("iss", "sub", "exp", "iat", "jti", "client_id", "scope")), info)
    info = introspect(tampered)
    c.check("introspect: tampered token is inactive and says only active=false", info == {"active": False}, info)

    # --- (d) key rotation while the server runs ------------------------------------------
    keys_before = warden_json(args.warden, "keys", "list")
    c.check("rotate: `warden keys list` shows the token's kid as the active ES256 key",
            [k["kid"] for k in keys_before if k["state"] == "active" and k["alg"] == "ES256"] == [old_kid], keys_before)
    c.check("rotate: an RS256 key is published for ID tokens (OIDC Core §15.1 requires RS256)",
            [k["state"] for k in keys_before if k["alg"] == "RS256"] == ["active"], keys_before)
    # Key times have one-second resolution. A key rotated in the same second as its
    # predecessor's activation either tied with it (older builds: the random kids decided which
    # one signed) or activates one second later (newer builds). Rotate in a later second, so
    # that with rotation_delay=0s the new key must sign at once.
    newest = max(k["activate_at"] for k in keys_before)
    while time.time() < newest + 1.05:
        time.sleep(0.05)
    out = subprocess.run([args.warden, "keys", "rotate", "--alg", "ES256", "--json"],
                         capture_output=True, text=True, timeout=60)
    c.check("rotate: `warden keys rotate --json` exits 0", out.returncode == 0,
            f"rc={out.returncode} stderr={out.stderr.strip()}", fatal=True)
    rotated = json.loads(out.stdout)
    new_kid = rotated["kid"]
    c.check("rotate: the new kid differs from the signing one", new_kid != old_kid, (new_kid, old_kid))
    c.check("rotate: with rotation_delay=0s the new key activates now", rotated["activate_at"] <= time.time(), rotated)

    deadline = time.monotonic() + 15
    while True:
        _, jwks_doc = fetch_jwks(jwks_url)
        kids = [k.get("kid") for k in jwks_doc.get("keys", []) if k.get("alg") == "ES256"]
        if len(kids) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    c.check("rotate: JWKS publishes 2 ES256 keys (old and new) within 15 s", len(kids) == 2 and set(kids) == {old_kid, new_kid},
            kids, fatal=True)
    leaked = [k.get("kid") for k in jwks_doc["keys"] if PRIVATE_MEMBERS & k.keys()]
    c.check("rotate: still no private key members in the JWKS", not leaked, leaked)

    tok2 = session.fetch_token(token_url, grant_type="client_credentials")
    new_token = tok2.get("access_token")
    c.check("rotate: Authlib obtains a token after rotation", bool(new_token), tok2, fatal=True)
    c.check("rotate: the new token is signed with the NEW kid", header_of(new_token).get("kid") == new_kid,
            (header_of(new_token), new_kid))
    states = {k["kid"]: k["state"] for k in warden_json(args.warden, "keys", "list")}
    c.check("rotate: `warden keys list` agrees: new key active, old key retiring",
            {k: v for k, v in states.items() if k in (new_kid, old_kid)} == {new_kid: "active", old_kid: "retiring"}, states)
    try:
        claims2 = verify(new_token, jwks_doc)
        c.check("rotate: jwcrypto verifies the new token", True)
    except Exception as e:  # noqa: BLE001
        c.check("rotate: jwcrypto verifies the new token", False, repr(e))
        claims2 = claims_unverified(new_token)
    c.check("rotate: new token has a fresh jti", claims2.get("jti") != claims.get("jti"), claims2.get("jti"))
    c.check("rotate: the OLD token still verifies against the JWKS", not rejects(lambda: verify(old_token, jwks_doc)))
    info = introspect(old_token)
    c.check("rotate: the OLD token still introspects active=true", info.get("active") is True, info)
    info = introspect(new_token)
    c.check("rotate: the new token introspects active=true", info.get("active") is True, info)

    # --- (e) revocation with Authlib (RFC 7009) -------------------------------------------
    resp = session.revoke_token(revoke_url, token=old_token, token_type_hint="access_token")
    c.check("revoke: 200 for the old token", resp.status_code == 200, f"{resp.status_code} {resp.text}")
    info = introspect(old_token)
    c.check("revoke: the revoked token introspects active=false (only that member)", info == {"active": False}, info)
    info = introspect(new_token)
    c.check("revoke: the other token stays active", info.get("active") is True, info)
    resp = session.revoke_token(revoke_url, token="not-a-token", token_type_hint="access_token")
    c.check("revoke: an unknown token is a 200 (RFC 7009 §2.2)", resp.status_code == 200, f"{resp.status_code} {resp.text}")


def token_claims(c: Checks, label: str, token: str | None, meta: dict) -> dict:
    """Verifies an access token with jwcrypto against the current JWKS; its claims."""
    c.check(f"{label}: Authlib obtains an access_token", bool(token), token, fatal=True)
    _, jwks_doc = fetch_jwks(meta["jwks_uri"])
    alg = header_of(token).get("alg", "")
    try:
        claims = verify(token, jwks_doc, alg if alg in KEY_TYPE_OF_ALG else "ES256")
    except Exception as e:  # noqa: BLE001
        c.check(f"{label}: jwcrypto verifies the access token against the JWKS", False, repr(e), fatal=True)
    c.check(f"{label}: jwcrypto verifies the access token against the JWKS", True)
    return claims


def secret_post_checks(c: Checks, args: argparse.Namespace, meta: dict) -> None:
    created = warden_json(args.warden, "client", "create", "--name", "conformance-post", "--auth-method",
                          "client_secret_post", "--grant-type", "client_credentials", "--scope", "read",
                          "--audience", args.audience)
    client_id, secret = created["client_id"], created.get("client_secret")
    c.check("client_secret_post: `warden client create --auth-method client_secret_post` returns a secret",
            bool(secret), created, fatal=True)
    session = OAuth2Session(client_id, secret, token_endpoint_auth_method="client_secret_post",
                            default_timeout=HTTP_TIMEOUT)
    seen = Recorder()
    seen.attach(session)
    tok = session.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
    sent = seen.responses[-1].request
    form = sent_form(seen.responses[-1])
    c.check("client_secret_post: Authlib sent the credentials in the body, no Authorization header",
            form.get("client_id") == client_id and form.get("client_secret") == secret and "Authorization" not in sent.headers,
            (sorted(form), dict(sent.headers)))
    claims = token_claims(c, "client_secret_post", tok.get("access_token"), meta)
    c.check("client_secret_post: the token is the client's (client_id, aud)",
            claims.get("client_id") == client_id and claims.get("aud") in (args.audience, [args.audience]), claims)
    bad = requests.post(meta["token_endpoint"], data={"grant_type": "client_credentials"}, auth=(client_id, secret),
                        timeout=HTTP_TIMEOUT)
    c.check("client_secret_post: the same secret over HTTP Basic -> 401 invalid_client (method not registered)",
            bad.status_code == 401 and oauth_error(bad) == "invalid_client", f"{bad.status_code} {bad.text}")


def form_value(html: str, name: str) -> str:
    """The value of a named input in one of Warden's pages (values are HTML-escaped)."""
    m = re.search(r'name="%s"[^>]*value="([^"]*)"' % re.escape(name), html)
    if not m:
        raise AssertionError(f"no input {name!r} in the page")
    return html_unescape(m.group(1))


def form_action(html: str) -> str:
    m = re.search(r'<form method="post" action="([^"]*)"', html)
    if not m:
        raise AssertionError("no form in the page")
    return html_unescape(m.group(1))


def code_flow_checks(c: Checks, args: argparse.Namespace, meta: dict) -> None:
    """The authorization code flow with Authlib as the client (PKCE S256, state, nonce), a
    requests session as the user's browser on the real login and consent pages, and jwcrypto
    verifying the ID token and at_hash."""
    issuer, callback = args.issuer, "https://rp.example/callback"
    password = "correct horse battery staple"
    out = subprocess.run([args.warden, "user", "create", "conformance-user", "--email", "user@example.com",
                          "--password-stdin", "--json"], input=password + "\n", capture_output=True, text=True, timeout=60)
    c.check("code flow: `warden user create --password-stdin` exits 0", out.returncode == 0, out.stderr.strip(), fatal=True)
    sub = json.loads(out.stdout)["sub"]
    created = warden_json(args.warden, "client", "create", "--name", "Conformance RP", "--redirect-uri", callback,
                          "--grant-type", "authorization_code", "--scope", "openid email")
    client_id, secret = created["client_id"], created["client_secret"]
    session = OAuth2Session(client_id, secret, scope="openid email", redirect_uri=callback,
                            code_challenge_method="S256", default_timeout=HTTP_TIMEOUT)
    verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    nonce = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
    url, state = session.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
    c.check("code flow: Authlib's authorization URL carries an S256 challenge",
            "code_challenge_method=S256" in url and "code_challenge=" in url, url)

    browser = requests.Session()
    origin = issuer.split("/", 3)[:3]
    absolute = lambda path: path if path.startswith("http") else "/".join(origin) + path  # noqa: E731
    r = browser.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
    c.check("code flow: /authorize sends the browser to the login page (303)", r.status_code == 303, r.status_code, fatal=True)
    login = browser.get(absolute(r.headers["location"]), timeout=HTTP_TIMEOUT)
    c.check("code flow: the login page has a CSRF token and refuses framing",
            'name="csrf"' in login.text and login.headers.get("x-frame-options") == "DENY"
            and "frame-ancestors 'none'" in login.headers.get("content-security-policy", ""), login.headers, fatal=True)
    r = browser.post(absolute(form_action(login.text)), data={"csrf": form_value(login.text, "csrf"), "username": "conformance-user",
                     "password": password}, allow_redirects=False, timeout=HTTP_TIMEOUT)
    consent = browser.get(absolute(r.headers["location"]), timeout=HTTP_TIMEOUT)
    c.check("code flow: after login, the consent page names the app", "Conformance RP" in consent.text, consent.status_code, fatal=True)
    r = browser.post(absolute(form_action(consent.text)), data={"csrf": form_value(consent.text, "csrf"), "decision": "allow"},
                     allow_redirects=False, timeout=HTTP_TIMEOUT)
    back = r.headers.get("location", "")
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(back).query))
    c.check("code flow: back at the callback with code, the same state and iss (RFC 9207)",
            back.startswith(callback) and params.get("state") == state and params.get("iss") == issuer and "code" in params,
            back, fatal=True)

    tok = session.fetch_token(meta["token_endpoint"], authorization_response=back, code_verifier=verifier)
    c.check("code flow: Authlib exchanges the code for access, ID token", "access_token" in tok and "id_token" in tok,
            sorted(tok), fatal=True)
    _, jwks_doc = fetch_jwks(meta["jwks_uri"])
    alg = header_of(tok["id_token"]).get("alg")
    c.check("code flow: the ID token is RS256 by default", alg == "RS256", alg)
    try:
        id_claims = verify(tok["id_token"], jwks_doc, alg)
        c.check("code flow: jwcrypto verifies the ID token against the JWKS", True)
    except Exception as e:  # noqa: BLE001
        c.check("code flow: jwcrypto verifies the ID token against the JWKS", False, repr(e), fatal=True)
    c.check("code flow: ID token iss, aud, azp, nonce, sub (OIDC Core §2)",
            id_claims.get("iss") == issuer and id_claims.get("aud") in (client_id, [client_id]) and id_claims.get("azp") == client_id
            and id_claims.get("nonce") == nonce and id_claims.get("sub") == sub, id_claims)
    digest = hashlib.sha256(tok["access_token"].encode()).digest()
    at_hash = base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
    c.check("code flow: at_hash is the left half of the access token's SHA-256 (OIDC Core §3.1.3.6)",
            id_claims.get("at_hash") == at_hash, (id_claims.get("at_hash"), at_hash))
    info = session.get(meta["userinfo_endpoint"]).json()
    c.check("code flow: userinfo returns the same sub and the email scope's claims",
            info.get("sub") == sub and info.get("email") == "user@example.com", info)
    again = requests.post(meta["token_endpoint"], data={"grant_type": "authorization_code", "code": params["code"],
                          "redirect_uri": callback, "code_verifier": verifier}, auth=(client_id, secret), timeout=HTTP_TIMEOUT)
    c.check("code flow: the code a second time -> 400 invalid_grant", again.status_code == 400 and oauth_error(again) == "invalid_grant",
            f"{again.status_code} {again.text}")


def dpop_proof(key: jwk.JWK, url: str, **extra: object) -> str:
    """An RFC 9449 §4.2 proof for POST url, made and signed by jwcrypto."""
    claims = {"jti": base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode(), "htm": "POST", "htu": url,
              "iat": int(time.time()), **extra}
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.export_public(as_dict=True)}
    token = jwt.JWT(header=header, claims=claims)
    token.make_signed_token(key)
    return token.serialize()


def dpop_checks(c: Checks, args: argparse.Namespace, meta: dict) -> None:
    token_url = meta["token_endpoint"]
    c.check("dpop: metadata lists ES256 in dpop_signing_alg_values_supported (RFC 9449 §5.1)",
            "ES256" in meta.get("dpop_signing_alg_values_supported", []), meta.get("dpop_signing_alg_values_supported"))
    created = warden_json(args.warden, "client", "create", "--name", "conformance-dpop", "--grant-type",
                          "client_credentials", "--scope", "read", "--audience", args.audience, "--dpop-bound")
    client_id, secret = created["client_id"], created["client_secret"]
    key = jwk.JWK.generate(kty="EC", crv="P-256")

    def token_request(proof: str | None) -> requests.Response:
        headers = {"DPoP": proof} if proof else {}
        return requests.post(token_url, data={"grant_type": "client_credentials"}, auth=(client_id, secret),
                             headers=headers, timeout=HTTP_TIMEOUT)

    r = token_request(None)
    c.check("dpop: a dpop_bound_access_tokens client without a proof -> 400 invalid_dpop_proof (RFC 9449 §5.2)",
            r.status_code == 400 and oauth_error(r) == "invalid_dpop_proof", f"{r.status_code} {r.text}")
    proof = dpop_proof(key, token_url)
    r = token_request(proof)
    body = r.json() if r.status_code == 200 else {}
    c.check("dpop: a jwcrypto proof gets 200 with token_type DPoP (RFC 9449 §5)",
            r.status_code == 200 and body.get("token_type") == "DPoP", f"{r.status_code} {r.text}", fatal=True)
    claims = token_claims(c, "dpop", body.get("access_token"), meta)
    c.check("dpop: cnf.jkt is jwcrypto's RFC 7638 thumbprint of the proof key (RFC 9449 §6.1)",
            claims.get("cnf") == {"jkt": key.thumbprint()}, (claims.get("cnf"), key.thumbprint()))
    r = token_request(proof)
    c.check("dpop: the same proof again -> 400 invalid_dpop_proof (single use, RFC 9449 §11.1)",
            r.status_code == 400 and oauth_error(r) == "invalid_dpop_proof", f"{r.status_code} {r.text}")
    r = token_request(dpop_proof(key, token_url.replace("/token", "/revoke")))
    c.check("dpop: a proof for another URI -> 400 invalid_dpop_proof (htu, RFC 9449 §4.3)",
            r.status_code == 400 and oauth_error(r) == "invalid_dpop_proof", f"{r.status_code} {r.text}")
    other = jwk.JWK.generate(kty="EC", crv="P-256")
    forged = jwt.JWT(header={"typ": "dpop+jwt", "alg": "ES256", "jwk": key.export_public(as_dict=True)},
                     claims={"jti": "forged-1", "htm": "POST", "htu": token_url, "iat": int(time.time())})
    forged.make_signed_token(other)
    r = token_request(forged.serialize())
    c.check("dpop: a proof signed by a key other than its jwk -> 400 invalid_dpop_proof",
            r.status_code == 400 and oauth_error(r) == "invalid_dpop_proof", f"{r.status_code} {r.text}")
    info = requests.post(meta["introspection_endpoint"], data={"token": body["access_token"]}, auth=(client_id, secret),
                         timeout=HTTP_TIMEOUT).json()
    c.check("dpop: introspection reports token_type DPoP and the cnf (RFC 9449 §6.2)",
            info.get("active") is True and info.get("token_type") == "DPoP" and info.get("cnf") == {"jkt": key.thumbprint()},
            info)


def private_key_jwt_checks(c: Checks, args: argparse.Namespace, meta: dict) -> None:
    issuer, token_url = args.issuer, meta["token_endpoint"]
    # The client's key pair, made by jwcrypto; Warden gets only the public half.
    kid = "conformance-pkjwt"
    pair = jwk.JWK.generate(kty="EC", crv="P-256", kid=kid, use="sig", alg="ES256")
    public = json.loads(pair.export_public())
    with tempfile.NamedTemporaryFile("w", suffix=".jwks.json", delete=False) as f:
        json.dump({"keys": [public]}, f)
        jwks_file = f.name
    try:
        created = warden_json(args.warden, "client", "create", "--name", "conformance-pkjwt", "--auth-method",
                              "private_key_jwt", "--jwks-file", jwks_file, "--grant-type", "client_credentials",
                              "--scope", "read", "--audience", args.audience)
    finally:
        os.unlink(jwks_file)
    client_id = created["client_id"]
    c.check("private_key_jwt: `warden client create --jwks-file` registers a client without a secret",
            bool(client_id) and "client_secret" not in created, created, fatal=True)

    # Authlib builds and signs the assertion; its audience is the issuer identifier, a single
    # string (draft-ietf-oauth-rfc7523bis), not the token endpoint Authlib would default to.
    signing_key = ECKey.import_key(json.loads(pair.export_private()))
    session = OAuth2Session(client_id, signing_key, token_endpoint_auth_method="private_key_jwt",
                            default_timeout=HTTP_TIMEOUT)
    session.register_client_auth_method(ShortLivedPrivateKeyJWT(issuer, alg="ES256", headers={"kid": kid}))
    seen = Recorder()
    seen.attach(session)
    tok = session.fetch_token(token_url, grant_type="client_credentials")
    form = sent_form(seen.responses[-1])
    assertion = form.get("client_assertion", "")
    c.check("private_key_jwt: Authlib sent a jwt-bearer client assertion",
            form.get("client_assertion_type") == JWT_BEARER and assertion.count(".") == 2, sorted(form), fatal=True)
    a_hdr, a_claims = header_of(assertion), claims_unverified(assertion)
    c.check("private_key_jwt: the assertion's aud is the issuer identifier, as one string",
            a_claims.get("aud") == issuer, a_claims.get("aud"))
    c.check("private_key_jwt: the assertion has iss = sub = client_id, a jti, exp within 60 s, ES256 and our kid",
            a_claims.get("iss") == client_id and a_claims.get("sub") == client_id and bool(a_claims.get("jti"))
            and 0 < a_claims.get("exp", 0) - time.time() <= 60 and a_hdr.get("alg") == "ES256" and a_hdr.get("kid") == kid,
            (a_hdr, a_claims))
    claims = token_claims(c, "private_key_jwt", tok.get("access_token"), meta)
    c.check("private_key_jwt: the token is the client's (sub, client_id, aud)",
            claims.get("sub") == client_id and claims.get("client_id") == client_id
            and claims.get("aud") in (args.audience, [args.audience]), claims)

    replay = requests.post(token_url, data={"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
                                            "client_assertion": assertion}, timeout=HTTP_TIMEOUT)
    c.check("private_key_jwt: the same assertion again (same jti) -> 401 invalid_client (RFC 7523 §3)",
            replay.status_code == 401 and oauth_error(replay) == "invalid_client", f"{replay.status_code} {replay.text}")
    reused = private_key_jwt_sign(signing_key, client_id=client_id, token_endpoint=issuer, alg="ES256",
                                  header={"kid": kid}, claims={"jti": a_claims["jti"]}, expires_in=30)
    replay = requests.post(token_url, data={"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
                                            "client_assertion": reused}, timeout=HTTP_TIMEOUT)
    c.check("private_key_jwt: a newly signed assertion reusing that jti -> 401 invalid_client",
            reused != assertion and replay.status_code == 401 and oauth_error(replay) == "invalid_client",
            f"{replay.status_code} {replay.text}")
    tok2 = session.fetch_token(token_url, grant_type="client_credentials")
    c.check("private_key_jwt: a fresh assertion (new jti) still gets a token", bool(tok2.get("access_token")), tok2)

    # Same kid and claims, signed with a key Warden never saw.
    stranger = jwk.JWK.generate(kty="EC", crv="P-256", kid=kid, use="sig", alg="ES256")
    forged = jwt.JWT(header={"alg": "ES256", "kid": kid, "typ": "JWT"},
                     claims={**a_claims, "jti": a_claims["jti"] + "-forged", "iat": int(time.time()),
                             "exp": int(time.time()) + 60})
    forged.make_signed_token(stranger)
    bad = requests.post(token_url, data={"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
                                         "client_assertion": forged.serialize()}, timeout=HTTP_TIMEOUT)
    c.check("private_key_jwt: an assertion signed with an unregistered key -> 401 invalid_client",
            bad.status_code == 401 and oauth_error(bad) == "invalid_client", f"{bad.status_code} {bad.text}")


def registration_checks(c: Checks, args: argparse.Namespace, meta: dict) -> None:
    register_url, token_url = meta["registration_endpoint"], meta["token_endpoint"]
    iat = warden_json(args.warden, "registration-token", "create", "--description", "conformance", "--expires-in", "10m")
    initial = iat.get("token")
    c.check("register: `warden registration-token create --json` prints a token", bool(initial), iat, fatal=True)

    body = {"client_name": "conformance-dynamic", "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_basic", "scope": "read",
            "audience": [args.dynamic_audience]}
    anon = requests.post(register_url, json=body, timeout=HTTP_TIMEOUT)
    c.check("register: without the initial access token -> 401 with a Bearer challenge",
            anon.status_code == 401 and anon.headers.get("www-authenticate", "").lower().startswith("bearer"),
            f"{anon.status_code} {anon.headers.get('www-authenticate')} {anon.text}")
    outside = requests.post(register_url, json={**body, "audience": ["https://not-allowed.conformance.test"]},
                            headers={"Authorization": f"Bearer {initial}"}, timeout=HTTP_TIMEOUT)
    c.check("register: an audience outside registration.allowed_audiences -> 400 invalid_client_metadata",
            outside.status_code == 400 and oauth_error(outside) == "invalid_client_metadata",
            f"{outside.status_code} {outside.text}")

    r = requests.post(register_url, json=body, headers={"Authorization": f"Bearer {initial}"}, timeout=HTTP_TIMEOUT)
    reg = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    c.check("register: 201 with client_id, client_secret, registration_access_token, registration_client_uri (RFC 7591 §3.2.1, RFC 7592 §3)",
            r.status_code == 201 and all(reg.get(k) for k in
                                         ("client_id", "client_secret", "registration_access_token", "registration_client_uri")),
            f"{r.status_code} {r.text}", fatal=True)
    client_id, secret = reg["client_id"], reg["client_secret"]
    rat, uri = reg["registration_access_token"], reg["registration_client_uri"]
    c.check("register: the response carries the registered metadata (grant_types, auth method, scope, audience)",
            reg.get("grant_types") == ["client_credentials"] and reg.get("token_endpoint_auth_method") == "client_secret_basic"
            and reg.get("scope") == "read" and reg.get("audience") == [args.dynamic_audience], reg)
    c.check("register: registration_client_uri is under the issuer", uri.startswith(args.issuer + "/"), uri)

    session = OAuth2Session(client_id, secret, token_endpoint_auth_method="client_secret_basic",
                            default_timeout=HTTP_TIMEOUT)
    tok = session.fetch_token(token_url, grant_type="client_credentials")
    claims = token_claims(c, "register", tok.get("access_token"), meta)
    c.check("register: the token's aud is the audience the client registered",
            claims.get("aud") in (args.dynamic_audience, [args.dynamic_audience]) and claims.get("client_id") == client_id,
            claims)

    read = requests.get(uri, headers={"Authorization": f"Bearer {rat}"}, timeout=HTTP_TIMEOUT)
    got = read.json() if read.ok else {}
    c.check("register: RFC 7592 GET with the registration access token -> 200, the same client",
            read.status_code == 200 and got.get("client_id") == client_id and got.get("audience") == [args.dynamic_audience],
            f"{read.status_code} {read.text}")
    wrong = requests.get(uri, headers={"Authorization": f"Bearer {initial}"}, timeout=HTTP_TIMEOUT)
    c.check("register: RFC 7592 GET with another token -> 401 invalid_token",
            wrong.status_code == 401 and oauth_error(wrong) == "invalid_token", f"{wrong.status_code} {wrong.text}")

    gone = requests.delete(uri, headers={"Authorization": f"Bearer {rat}"}, timeout=HTTP_TIMEOUT)
    c.check("register: RFC 7592 DELETE -> 204", gone.status_code == 204, f"{gone.status_code} {gone.text}")
    after = requests.get(uri, headers={"Authorization": f"Bearer {rat}"}, timeout=HTTP_TIMEOUT)
    c.check("register: GET after DELETE -> 401 (the registration is gone)", after.status_code == 401,
            f"{after.status_code} {after.text}")
    refused = requests.post(token_url, data={"grant_type": "client_credentials"}, auth=(client_id, secret),
                            timeout=HTTP_TIMEOUT)
    c.check("register: the token endpoint refuses the deleted client -> 401 invalid_client",
            refused.status_code == 401 and oauth_error(refused) == "invalid_client", f"{refused.status_code} {refused.text}")


# --- phase: alg -------------------------------------------------------------------------


def phase_alg(c: Checks, args: argparse.Namespace) -> None:
    c.section(args.alg, lambda: alg_checks(c, args))


def alg_checks(c: Checks, args: argparse.Namespace) -> None:
    alg, issuer = args.alg, args.issuer
    label = alg
    with open(args.client) as f:
        client = json.load(f)
    meta = requests.get(f"{issuer}/.well-known/oauth-authorization-server", timeout=HTTP_TIMEOUT).json()
    session = OAuth2Session(client["client_id"], client["client_secret"], token_endpoint_auth_method="client_secret_basic",
                            default_timeout=HTTP_TIMEOUT)
    token = session.fetch_token(meta["token_endpoint"], grant_type="client_credentials").get("access_token")
    c.check(f"{label}: Authlib obtains an access_token from the restarted provider", bool(token), token, fatal=True)
    hdr = header_of(token)
    c.check(f"{label}: header alg is {alg} (keys.access_token_alg), typ at+jwt",
            hdr.get("alg") == alg and hdr.get("typ") in ("at+jwt", "application/at+jwt"), hdr)
    _, jwks_doc = fetch_jwks(meta["jwks_uri"])
    published = {k.get("kid"): k for k in jwks_doc.get("keys", [])}
    key = published.get(hdr.get("kid"))
    c.check(f"{label}: header kid is published in the JWKS", key is not None, (hdr.get("kid"), list(published)), fatal=True)
    kty, crv = KEY_TYPE_OF_ALG[alg]
    c.check(f"{label}: the JWK's alg is the header's alg, its kty (and crv) fit it, use sig",
            key.get("alg") == hdr.get("alg") and key.get("kty") == kty and key.get("crv") == crv and key.get("use") == "sig",
            key)
    if kty == "RSA":
        n = base64.urlsafe_b64decode(key["n"] + "=" * (-len(key["n"]) % 4))
        c.check(f"{label}: the RSA modulus has at least 2048 bits", len(n.lstrip(b"\0")) * 8 >= 2048, len(n) * 8)
    c.check(f"{label}: no private key members in the JWKS",
            not [k.get("kid") for k in jwks_doc["keys"] if PRIVATE_MEMBERS & k.keys()], jwks_doc)
    try:
        claims = verify(token, jwks_doc, alg)
        c.check(f"{label}: jwcrypto verifies the token with only {alg} allowed", True)
    except Exception as e:  # noqa: BLE001
        c.check(f"{label}: jwcrypto verifies the token with only {alg} allowed", False, repr(e), fatal=True)
    c.check(f"{label}: iss is the issuer, client_id the client",
            claims.get("iss") == issuer and claims.get("client_id") == client["client_id"], claims)
    other = OTHER_ALG[alg]
    c.check(f"{label}: jwcrypto refuses the token when only {other} is allowed (verifier sanity)",
            rejects(lambda: verify(token, jwks_doc, other)))
    resp = session.introspect_token(meta["introspection_endpoint"], token=token, token_type_hint="access_token")
    info = resp.json() if resp.ok else {}
    c.check(f"{label}: Warden's introspection finds the token active", info.get("active") is True and info.get("jti") == claims.get("jti"),
            f"{resp.status_code} {resp.text}")


# --- phase: summary and the command line ------------------------------------------------


def summary(tally: str, phases: int) -> int:
    passed = failed = 0
    reported = []
    try:
        with open(tally) as f:
            for line in f:
                rec = json.loads(line)
                reported.append(rec["phase"])
                passed += rec["passed"]
                failed += rec["failed"]
    except FileNotFoundError:
        pass
    if len(reported) != phases:
        failed += 1
        print(f"FAIL  every phase reported: {len(reported)} of {phases} ({', '.join(reported) or 'none'})")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="phase", required=True)
    for name in ("main", "alg"):
        p = sub.add_parser(name)
        p.add_argument("--warden", required=True)
        p.add_argument("--issuer", required=True)
        p.add_argument("--client", required=True)
        p.add_argument("--scope", required=True)
        p.add_argument("--audience", required=True)
        p.add_argument("--tally", required=True)
        if name == "main":
            p.add_argument("--dynamic-audience", required=True)
        else:
            p.add_argument("--alg", required=True, choices=sorted(KEY_TYPE_OF_ALG))
    p = sub.add_parser("summary")
    p.add_argument("--tally", required=True)
    p.add_argument("--phases", required=True, type=int)
    args = ap.parse_args()

    if args.phase == "summary":
        return summary(args.tally, args.phases)
    c = Checks()
    (phase_main if args.phase == "main" else phase_alg)(c, args)
    name = args.phase if args.phase == "main" else f"alg {args.alg}"
    with open(args.tally, "a") as f:
        f.write(json.dumps({"phase": name, "passed": c.passed, "failed": c.failed}) + "\n")
    return 0 if c.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
