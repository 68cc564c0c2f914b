"""The S3-compatible server the integration tests run against, on 127.0.0.1.

Starts moto's S3 server on a free port, and beside it a pass-through proxy that drops
the conditional-write headers (If-None-Match, If-Match) from every request: a store
that ignores conditional writes, for `mreg remote check` to catch. Prints one line,
`ready S3PORT PROXYPORT`, when both listen, and exits when its stdin closes, so the
servers never outlive the test process that started them.
"""

import http.client
import http.server
import logging
import os
import socket
import sys
import threading

from moto.s3.responses import S3Response
from moto.server import ThreadedMotoServer

DROPPED = {"if-none-match", "if-match"}

# moto checks If-Match and If-None-Match and then stores the object with no lock in
# between, so two concurrent conditional writes of one key can both succeed; and an
# overwrite closes the buffer of the object it replaces while a concurrent read still
# uses it (HTTP 500). A real S3 does neither. One lock around every request on a key
# (not on a bucket listing) makes moto's conditional writes atomic, as the tests of
# concurrent promotions and gc leases need.
_KEY_LOCK = threading.Lock()
_key_response = S3Response._key_response


def _locked_key_response(self, request, full_url):
    with _KEY_LOCK:
        return _key_response(self, request, full_url)


S3Response._key_response = _locked_key_response


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proxy_handler(upstream_port):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def forward(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in DROPPED}
            conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
            conn.request(self.command, self.path, body=body, headers=headers)
            reply = conn.getresponse()
            data = reply.read()
            self.send_response(reply.status, reply.reason)
            for key, value in reply.getheaders():
                if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            conn.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

    return Handler


def main():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    s3_port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port, verbose=False)
    server.start()
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), proxy_handler(s3_port))
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    print(f"ready {s3_port} {proxy.server_address[1]}", flush=True)
    sys.stdin.read()
    os._exit(0)


if __name__ == "__main__":
    main()
