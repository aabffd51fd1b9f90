#!/usr/bin/python3
"""Test receiver for the alert webhook: appends each POSTed JSON body as one line."""

import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

CALLS = "/var/lib/hc-receiver/calls.jsonl"


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        record = {"path": self.path, "content_type": self.headers.get("Content-Type"), "body": json.loads(body)}
        with open(CALLS, "a", encoding="utf-8") as calls:
            calls.write(json.dumps(record) + "\n")
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_args):
        pass


if __name__ == "__main__":
    HTTPServer(("127.0.0.1", int(sys.argv[1])), Receiver).serve_forever()
