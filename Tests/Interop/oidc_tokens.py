#!/usr/bin/env python3
"""An OpenID Connect token issuer for Warden's OIDC tests: keys and signatures by joserfc, HTTP by the standard library.

Usage: oidc_tokens.py [--issuer URL] — generates an RS256 (RSA 2048) and an ES256 (P-256) signing key, listens on a
loopback port it picks, prints that port as its first line, then serves (BASE is http://127.0.0.1:PORT, the issuer defaults to BASE):
  GET  /.well-known/openid-configuration   {"issuer": ISSUER, "jwks_uri": BASE + "/jwks"}
  GET  /jwks[?delay=SECONDS][&odd]         the public keys, {"keys": [...]}, optionally after a delay, and with
                                           odd entries first (a shared secret, an encryption key, a broken key)
  POST /mint {"claims": {...}, "alg": "RS256", "kid": optional, "header": {...}, "forge": false}
                                           the compact JWT, as text. alg RS256 or ES256 signs with the newest key of
                                           that type unless kid names another; a kid that is not published, or
                                           "forge": true, signs with a fresh unpublished key under that kid. alg "none"
                                           gives an unsigned token; alg "HS256" signs with HMAC-SHA256 keyed by the PEM
                                           of the RSA key named by kid (the algorithm confusion attack).
  POST /rotate {"alg": "RS256", "retire": false}
                                           adds a key with a new kid (and with "retire", unpublishes the older keys of
                                           that type); answers {"kid": NEW}
  GET  /stats                              {"jwks": N, "discovery": N}: how often each was fetched
  GET  /big, /big-unsized                  a 2 MiB body, with and without Content-Length
  GET  /slow                               answers nothing for 30 seconds
  GET  /trickle                            announces 1000 bytes, then sends one every half second
"""
import base64
import hashlib
import hmac
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

# Entries a verifier must pass over: a shared secret, an encryption key, a broken key, not a key.
ODD = [
    {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
    {"kty": "RSA", "kid": "encryption", "use": "enc", "n": "AQAB", "e": "AQAB"},
    {"kty": "EC", "kid": "broken", "crv": "P-256", "x": "!", "y": "!"},
    {"comment": "not a key"},
]
lock = threading.Lock()
keys = []  # (kid, alg, key, published), oldest first
counts = {"jwks": 0, "discovery": 0}
serial = 0


def generate(alg, kid):
    parameters = {"kid": kid, "alg": alg, "use": "sig"}
    if alg == "RS256":
        return RSAKey.generate_key(2048, parameters=parameters)
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters=parameters)
    raise ValueError("unsupported alg " + alg)


def add_key(alg):
    global serial
    serial += 1
    kid = "%s-%d" % (alg.lower(), serial)
    keys.append([kid, alg, generate(alg, kid), True])
    return kid


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(doc):
    return b64(json.dumps(doc, separators=(",", ":")).encode())


def mint(request):
    claims = request.get("claims", {})
    alg = request.get("alg", "RS256")
    kid = request.get("kid")
    extra = request.get("header", {})
    if alg == "none":
        header = {"alg": "none", "typ": "JWT", **extra}
        return segment(header) + "." + segment(claims) + "."
    with lock:
        published = {k[0]: k for k in keys if k[3]}
        family = "RS256" if alg == "HS256" else alg
        newest = [k for k in keys if k[1] == family and k[3]]
        kid = kid or newest[-1][0]
        entry = published.get(kid)
    if alg == "HS256":
        secret = entry[2].as_pem(private=False)
        header = {"alg": "HS256", "typ": "JWT", "kid": kid, **extra}
        signing_input = segment(header) + "." + segment(claims)
        return signing_input + "." + b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())
    if entry is None or request.get("forge"):
        key = generate(alg, kid)
    else:
        key = entry[2]
    return jwt.encode({"alg": alg, "kid": kid, **extra}, claims, key)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, code, body, content_type="application/json"):
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        if url.path == "/.well-known/openid-configuration":
            with lock:
                counts["discovery"] += 1
            return self.answer(200, {"issuer": ISSUER, "jwks_uri": BASE + "/jwks", "id_token_signing_alg_values_supported": ["RS256", "ES256"]})
        if url.path == "/jwks":
            time.sleep(float(query.get("delay", ["0"])[0]))
            with lock:
                counts["jwks"] += 1
                doc = {"keys": [k[2].as_dict(private=False) for k in keys if k[3]]}
            if "odd" in query:
                doc["keys"] = ODD + doc["keys"]
            return self.answer(200, doc)
        if url.path == "/stats":
            with lock:
                return self.answer(200, dict(counts))
        if url.path == "/big":
            return self.answer(200, b" " * (2 << 20))
        if url.path == "/big-unsized":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            for _ in range(32):
                self.wfile.write(b" " * (64 << 10))
            return
        if url.path == "/slow":
            time.sleep(30)
            return self.answer(200, {"keys": []})
        if url.path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(1000):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.5)
            return
        self.answer(404, {"error": "not found"})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        request = json.loads(body) if body else {}
        if self.path == "/mint":
            return self.answer(200, mint(request).encode(), "application/jwt")
        if self.path == "/rotate":
            alg = request.get("alg", "RS256")
            with lock:
                if request.get("retire"):
                    for k in keys:
                        if k[1] == alg:
                            k[3] = False
                kid = add_key(alg)
            return self.answer(200, {"kid": kid})
        self.answer(404, {"error": "not found"})


add_key("RS256")
add_key("ES256")
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
port = server.server_address[1]
BASE = "http://127.0.0.1:%d" % port
ISSUER = BASE
if len(sys.argv) == 3 and sys.argv[1] == "--issuer":
    ISSUER = sys.argv[2]
print(port, flush=True)
server.serve_forever()
