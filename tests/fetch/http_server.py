#!/usr/bin/env python3
"""A local HTTP server for the downloader's tests (Python stdlib only).

    python3 http_server.py ROOT_DIR [--fail-once PATH:BYTES] [--port-file F] [--no-range]

Serves the files of ROOT_DIR on 127.0.0.1 at an ephemeral port, printed as the first line of
stdout (and written to F with --port-file). Supports "Range: bytes=N-" (206 + Content-Range), 404
for missing files. With --fail-once PATH:BYTES the first GET of PATH announces the full
Content-Length but closes the connection after BYTES bytes; later requests succeed. Each request
is logged to stderr as "METHOD PATH range=<Range header or ->", so a test can check a Range was
sent. --no-range ignores Range headers (answers 200 with the whole file), like servers that
do not support resuming.
"""

import argparse
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root")
    ap.add_argument("--fail-once", action="append", default=[], metavar="PATH:BYTES")
    ap.add_argument("--port-file")
    ap.add_argument("--no-range", action="store_true")
    args = ap.parse_args()
    root = os.path.realpath(args.root)
    fail_once = {}
    for spec in args.fail_once:
        path, _, n = spec.rpartition(":")
        if not path.startswith("/"):
            path = "/" + path
        fail_once[path] = int(n)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):  # the request log below replaces the default one
            pass

        def do_HEAD(self):
            self.serve(body=False)

        def do_GET(self):
            self.serve(body=True)

        def serve(self, body):
            rng = self.headers.get("Range")
            sys.stderr.write(f"{self.command} {self.path} range={rng or '-'}\n")
            sys.stderr.flush()
            url_path = self.path.split("?", 1)[0]
            local = os.path.realpath(os.path.join(root, url_path.lstrip("/")))
            if not local.startswith(root + os.sep) or not os.path.isfile(local):
                msg = b"not found\n"
                self.send_response(404)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                if body:
                    self.wfile.write(msg)
                return
            with open(local, "rb") as f:
                data = f.read()
            start = 0
            m = re.fullmatch(r"bytes=(\d+)-", rng.strip()) if rng and not args.no_range else None
            if m:
                start = int(m.group(1))
                if start >= len(data) and len(data) > 0:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            payload = data[start:]
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(payload)))
            cut = None
            if body:
                with lock:
                    cut = fail_once.pop(url_path, None)
            if cut is not None:
                self.send_header("Connection", "close")
            self.end_headers()
            if not body:
                return
            if cut is not None:
                self.wfile.write(payload[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    print(port, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
