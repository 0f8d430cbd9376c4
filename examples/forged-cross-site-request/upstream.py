#!/usr/bin/env python3
"""A tiny cookie-authenticated account API (the vulnerable upstream of the Verizon case).

POST .../email with the cookie `session=victim` changes the victim's e-mail address to the
form's `email` — no CSRF token, like the API of the case study. GET .../ shows the account.
Usage: upstream.py PORT
"""
import http.server
import sys
import urllib.parse

account = {"user": "victim", "email": "victim@example.com"}


class Handler(http.server.BaseHTTPRequestHandler):
    def reply(self, status, text):
        body = (text + "\n").encode()
        self.send_response(status)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def signed_in(self):
        cookies = self.headers.get("cookie", "")
        return "session=victim" in [c.strip() for c in cookies.split(";")]

    def do_GET(self):
        if not self.signed_in():
            return self.reply(401, "sign in first")
        self.reply(200, f"{account['user']} <{account['email']}>")

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        if not self.signed_in():
            return self.reply(401, "sign in first")
        if self.path.endswith("/email") and "email" in form:
            account["email"] = form["email"][0]
            return self.reply(200, f"e-mail changed to {account['email']}")
        self.reply(400, "unknown request")

    def log_message(self, fmt, *args):
        sys.stderr.write("upstream: " + (fmt % args) + "\n")


if __name__ == "__main__":
    http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
