#!/usr/bin/env python3
"""Flotilla's sample web application: answers /version with the revision it was deployed from.

Flotilla writes that revision into the release's REVISION file; /health answers "ok".
Usage: python3 app.py [PORT]   (default 8000)
"""
import http.server
import os
import sys

HERE = os.path.dirname(os.path.realpath(__file__))


def revision():
    try:
        with open(os.path.join(HERE, "REVISION"), encoding="utf-8") as file:
            return file.read().strip()
    except OSError:
        return "unknown"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/version":
            self.answer(200, revision())
        elif self.path == "/health":
            self.answer(200, "ok")
        else:
            self.answer(404, "not found")

    def answer(self, status, text):
        body = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
