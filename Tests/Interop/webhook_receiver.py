#!/usr/bin/env python3
"""A webhook receiver for Warden's http runtime tests, written with the Python standard library only.

Usage: webhook_receiver.py SECRET LOGFILE — prints the port it listens on, then serves:
  POST /sync     checks X-Warden-Signature (HMAC-SHA256 of the body with SECRET), answers 200 {"outputs": ...}
  POST /async    checks the signature, answers 202, then POSTs a signed result to context.callback and, as a
                 replay, a second time (the second answer must be 410)
  POST /flaky    503 for the first two requests of an attempt key's run/step, then 200
  POST /reject   422 (a permanent failure)
  POST /notify   records the body, 204
Every request (path, signature valid or not, body, callback answers) is appended to LOGFILE as a JSON line.
"""
import hashlib
import hmac
import json
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = sys.argv[1].encode()
LOG = sys.argv[2]
lock = threading.Lock()
counts = {}


def log(entry):
    with lock, open(LOG, "a") as f:
        f.write(json.dumps(entry) + "\n")


def sign(body):
    return "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()


def post(url, body):
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json", "X-Warden-Signature": sign(body)})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, code, doc=None):
        body = json.dumps(doc).encode() if doc is not None else b""
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        signature = self.headers.get("X-Warden-Signature")
        valid = signature is not None and hmac.compare_digest(signature, sign(body))
        doc = json.loads(body) if body else {}
        log({"path": self.path, "valid": valid, "body": doc, "key": self.headers.get("X-Warden-Attempt-Key")})
        if self.path == "/notify":
            return self.answer(204)
        if not valid:
            return self.answer(401, {"error": "bad signature"})
        if self.path == "/sync":
            return self.answer(200, {"outputs": {"echo": doc["inputs"], "attempt": doc["context"]["attempt"]}})
        if self.path == "/reject":
            return self.answer(422, {"error": "unprocessable"})
        if self.path == "/flaky":
            key = doc["context"]["run"] + "/" + doc["context"]["step"]
            with lock:
                counts[key] = counts.get(key, 0) + 1
                n = counts[key]
            if n <= 2:
                return self.answer(503, {"error": "busy"})
            return self.answer(200, {"outputs": {"tries": n}})
        if self.path == "/async":
            callback = doc["context"]["callback"]

            def later():
                time.sleep(0.2)
                result = json.dumps({"status": "succeeded", "outputs": {"scanned": doc["inputs"], "by": "receiver"}}).encode()
                first = post(callback, result)
                second = post(callback, result)
                log({"callback": callback, "first": first, "replay": second})

            threading.Thread(target=later, daemon=True).start()
            return self.answer(202)
        self.answer(404)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
