#!/usr/bin/env python3
"""Black-box interop check of a running Warden provider with independent Python libraries.

Authlib is the OAuth 2.0 client (client credentials, RFC 7662 introspection, RFC 7009
revocation); jwcrypto is the JOSE verifier. Nothing here shares code with Warden.

Started by conformance/run.sh, which runs the server and creates the client. Arguments:
  --warden BIN        the warden binary (for `warden keys rotate`, same data dir via env)
  --issuer URL        the provider's issuer (http://127.0.0.1:PORT)
  --client FILE       output of `warden client create --json` (client_id, client_secret)
  --scope S           the client's registered scopes (space-separated)
  --audience A        the client's registered audience

Prints one line per check (`ok`/`FAIL`; `note` lines are informational and not counted)
and, last, `N passed, M failed`; exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
import time
import traceback

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from jwcrypto import jwk, jws, jwt

# RFC 7517/7518 members that only a private (or symmetric) key has.
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
HTTP_TIMEOUT = 10


class Abort(Exception):
    """A failed check that later checks depend on."""


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
            if fatal:
                raise Abort(name)
        sys.stdout.flush()
        return ok

    def summary(self) -> int:
        print(f"{self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 else 1


def b64json(segment: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def header_of(token: str) -> dict:
    return b64json(token.split(".")[0])


def claims_unverified(token: str) -> dict:
    return b64json(token.split(".")[1])


def fetch_jwks(url: str) -> tuple[requests.Response, dict]:
    r = requests.get(url, timeout=HTTP_TIMEOUT)
    return r, (r.json() if r.ok else {})


def verify(token: str, jwks_doc: dict) -> dict:
    """Verifies the signature with jwcrypto against the published set; returns the claims.

    Only ES256 is accepted (Warden's default access-token algorithm), so an `alg` swap would
    fail here. The kid in the header selects the key. Expiry/nbf are checked by jwcrypto.
    """
    keyset = jwk.JWKSet.from_json(json.dumps(jwks_doc))
    t = jwt.JWT(jwt=token, key=keyset, algs=["ES256"], expected_type="JWS", check_claims={"exp": None})
    return json.loads(t.claims)


def warden_keys(warden: str) -> list[dict]:
    """`warden keys list --json` on the server's data dir (inherited WARDEN_DATA_DIR)."""
    out = subprocess.run([warden, "keys", "list", "--json"], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise AssertionError(f"warden keys list: rc={out.returncode} stderr={out.stderr.strip()}")
    return json.loads(out.stdout)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--warden", required=True)
    ap.add_argument("--issuer", required=True)
    ap.add_argument("--client", required=True)
    ap.add_argument("--scope", required=True)
    ap.add_argument("--audience", required=True)
    args = ap.parse_args()

    c = Checks()
    try:
        run(c, args)
    except Abort:
        print("aborting: a check that later checks depend on failed")
    except Exception:  # noqa: BLE001 - any surprise is a failure with a traceback
        traceback.print_exc()
        c.check("no unexpected exception", False, "see traceback above")
    return c.summary()


def run(c: Checks, args: argparse.Namespace) -> None:
    issuer = args.issuer
    with open(args.client) as f:
        client = json.load(f)
    client_id, client_secret = client["client_id"], client["client_secret"]
    registered_scopes = args.scope.split()
    audience = args.audience

    # --- RFC 8414 metadata ------------------------------------------------------------
    r = requests.get(f"{issuer}/.well-known/oauth-authorization-server", timeout=HTTP_TIMEOUT)
    c.check("metadata: 200 application/json", r.status_code == 200 and r.headers.get("content-type", "").startswith("application/json"),
            f"{r.status_code} {r.headers.get('content-type')}", fatal=True)
    meta = r.json()
    c.check("metadata: issuer is the configured issuer (RFC 8414 §3.3)", meta.get("issuer") == issuer, meta.get("issuer"))
    for ep, path in [("token_endpoint", "/token"), ("jwks_uri", "/jwks"),
                     ("introspection_endpoint", "/introspect"), ("revocation_endpoint", "/revoke")]:
        c.check(f"metadata: {ep}", meta.get(ep) == issuer + path, meta.get(ep))
    c.check("metadata: client_credentials in grant_types_supported",
            "client_credentials" in meta.get("grant_types_supported", []), meta.get("grant_types_supported"))
    # Informational, not counted: Authlib's own RFC 8414 validator on the document.
    try:
        AuthorizationServerMetadata(meta).validate()
        print("note  Authlib's RFC 8414 validator accepts the metadata")
    except Exception as e:  # noqa: BLE001
        print(f"note  Authlib's RFC 8414 validator rejects the metadata (not counted): {e}")
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
            bad.status_code == 401 and bad.json().get("error") == "invalid_client"
            and bad.headers.get("www-authenticate", "").lower().startswith("basic"),
            f"{bad.status_code} {bad.headers.get('www-authenticate')} {bad.text}")
    bad = requests.post(token_url, data={"grant_type": "client_credentials", "scope": "not-registered"},
                        auth=(client_id, client_secret), timeout=HTTP_TIMEOUT)
    c.check("token: unregistered scope -> 400 invalid_scope",
            bad.status_code == 400 and bad.json().get("error") == "invalid_scope", f"{bad.status_code} {bad.text}")

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
    try:
        verify(tampered, jwks_doc)
        c.check("jwt: jwcrypto rejects a tampered signature (verifier sanity)", False, "verified")
    except Exception:  # noqa: BLE001
        c.check("jwt: jwcrypto rejects a tampered signature (verifier sanity)", True)

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
    keys_before = warden_keys(args.warden)
    c.check("rotate: `warden keys list` shows the token's kid as the active key",
            [k["kid"] for k in keys_before if k["state"] == "active"] == [old_kid], keys_before)
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
        kids = [k.get("kid") for k in jwks_doc.get("keys", [])]
        if len(kids) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    c.check("rotate: JWKS publishes 2 keys (old and new) within 15 s", len(kids) == 2 and set(kids) == {old_kid, new_kid},
            kids, fatal=True)
    leaked = [k.get("kid") for k in jwks_doc["keys"] if PRIVATE_MEMBERS & k.keys()]
    c.check("rotate: still no private key members in the JWKS", not leaked, leaked)

    tok2 = session.fetch_token(token_url, grant_type="client_credentials")
    new_token = tok2.get("access_token")
    c.check("rotate: Authlib obtains a token after rotation", bool(new_token), tok2, fatal=True)
    c.check("rotate: the new token is signed with the NEW kid", header_of(new_token).get("kid") == new_kid,
            (header_of(new_token), new_kid))
    states = {k["kid"]: k["state"] for k in warden_keys(args.warden)}
    c.check("rotate: `warden keys list` agrees: new key active, old key retiring",
            states == {new_kid: "active", old_kid: "retiring"}, states)
    try:
        claims2 = verify(new_token, jwks_doc)
        c.check("rotate: jwcrypto verifies the new token", True)
    except Exception as e:  # noqa: BLE001
        c.check("rotate: jwcrypto verifies the new token", False, repr(e))
        claims2 = claims_unverified(new_token)
    c.check("rotate: new token has a fresh jti", claims2.get("jti") != claims.get("jti"), claims2.get("jti"))
    try:
        verify(old_token, jwks_doc)
        c.check("rotate: the OLD token still verifies against the JWKS", True)
    except Exception as e:  # noqa: BLE001
        c.check("rotate: the OLD token still verifies against the JWKS", False, repr(e))
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


if __name__ == "__main__":
    sys.exit(main())
