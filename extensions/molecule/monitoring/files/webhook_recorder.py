#!/usr/bin/python3
"""Alertmanager's webhook receiver in the Molecule scenario `monitoring` (runs on mon-router).

Usage: webhook_recorder.py ADDRESS:PORT FILE. Every POST body that is JSON is appended to FILE as
one line; tests/ read that file to see which notifications Alertmanager delivered. A body that is not
JSON gets 400 and is not recorded (Alertmanager retries it, and the test sees nothing arrive).
"""

from __future__ import annotations

import http.server
import json
import sys


def main() -> None:
    address, port = sys.argv[1].rsplit(":", 1)
    record = sys.argv[2]

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the name http.server calls
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                doc = json.loads(body)
            except ValueError:
                self.send_error(400, "body is not JSON")
                return
            with open(record, "a", encoding="utf-8") as out:
                out.write(json.dumps({"path": self.path, "body": doc}) + "\n")
            self.send_response(200)
            self.end_headers()

    http.server.ThreadingHTTPServer((address, int(port)), Recorder).serve_forever()


if __name__ == "__main__":
    main()
