#!/usr/bin/env python3
"""The carmaker's side of the VIN-enumeration case study: Python standard library and the
openssl command line only.

Two HTTP servers on loopback, both stand-ins:

- the accounts service (--accounts-port): POST /token with username and password answers an
  RS256 access token (typ at+jwt) whose `vins` claim lists the cars that owner has;
  GET /jwks.json publishes its public key. Warden trusts it as [[gateway.issuers]] "accounts".
- the car API (--api-port): GET /cars/VIN answers that car's battery and location for ANY
  VIN, asking nothing: the API of the Nissan Leaf case. It logs every request it receives
  ("car-api: GET /cars/VIN") on standard error, so run.sh can show which ones reached it.

Usage: carmaker.py --key KEY.pem [--accounts-port 18411] [--api-port 18412]
The RSA key is created with `openssl genpkey` when KEY.pem does not exist.
"""
import argparse
import base64
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

AUDIENCE = "https://cars.example"
KID = "accounts-1"
# Owners, their passwords and their cars (demo data).
OWNERS = {
    "alice": ("alice-password", ["SJNFAAZE0U6000001"]),
    "bob": ("bob-password", ["SJNFAAZE0U6000002", "SJNFAAZE0U6000003"]),
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Signer:
    """An RS256 key held in a PEM file; signatures by `openssl dgst -sha256 -sign`."""

    def __init__(self, path: str):
        if not os.path.exists(path):
            subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path],
                           check=True, capture_output=True)
        self.path = path
        out = subprocess.run(["openssl", "rsa", "-in", path, "-noout", "-modulus"], check=True, capture_output=True, text=True).stdout
        modulus = bytes.fromhex(out.strip().split("=", 1)[1])
        self.jwk = {"kty": "RSA", "kid": KID, "use": "sig", "alg": "RS256", "n": b64url(modulus), "e": b64url((65537).to_bytes(3, "big"))}

    def sign(self, header: dict, claims: dict) -> str:
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.path], input=signing_input.encode(), check=True, capture_output=True).stdout
        return f"{signing_input}.{b64url(sig)}"


def accounts_handler(signer: Signer, issuer: str):
    class Accounts(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, status: int, body: dict):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("cache-control", "no-store")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/jwks.json":
                self.answer(200, {"keys": [signer.jwk]})
            else:
                self.answer(404, {"error": "not_found"})

        def do_POST(self):
            if self.path != "/token":
                return self.answer(404, {"error": "not_found"})
            length = int(self.headers.get("content-length") or 0)
            form = urllib.parse.parse_qs(self.rfile.read(length).decode())
            user = (form.get("username") or [""])[0]
            password = (form.get("password") or [""])[0]
            owner = OWNERS.get(user)
            if owner is None or owner[0] != password:
                return self.answer(400, {"error": "invalid_grant"})
            now = int(time.time())
            claims = {"iss": issuer, "sub": user, "aud": AUDIENCE, "iat": now, "exp": now + 300,
                      "jti": str(uuid.uuid4()), "client_id": "carwings-app", "scope": "cars:read", "vins": owner[1]}
            token = signer.sign({"alg": "RS256", "kid": KID, "typ": "at+jwt"}, claims)
            self.answer(200, {"access_token": token, "token_type": "Bearer", "expires_in": 300})

    return Accounts


class CarApi(http.server.BaseHTTPRequestHandler):
    """The vulnerable API: any VIN, no questions asked."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        print(f"car-api: GET {self.path}", file=sys.stderr, flush=True)
        parts = self.path.split("?", 1)[0].split("/")
        if len(parts) == 3 and parts[1] == "cars" and parts[2]:
            vin = parts[2]
            owner = self.headers.get("x-warden-sub", "-")
            body = json.dumps({"vin": vin, "battery_percent": 81, "climate": "off", "location": "51.50,-0.12", "asked_by": owner}).encode()
            self.send_response(200)
        else:
            body = b'{"error": "not found"}'
            self.send_response(404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--key", required=True)
    p.add_argument("--accounts-port", type=int, default=18411)
    p.add_argument("--api-port", type=int, default=18412)
    a = p.parse_args()
    signer = Signer(a.key)
    issuer = f"http://127.0.0.1:{a.accounts_port}"
    accounts = http.server.ThreadingHTTPServer(("127.0.0.1", a.accounts_port), accounts_handler(signer, issuer))
    api = http.server.ThreadingHTTPServer(("127.0.0.1", a.api_port), CarApi)
    threading.Thread(target=accounts.serve_forever, daemon=True).start()
    print(f"carmaker: accounts on {issuer}, car API on http://127.0.0.1:{a.api_port}", file=sys.stderr, flush=True)
    api.serve_forever()


if __name__ == "__main__":
    main()
