"""A hostile OCI registry on 127.0.0.1, for the push tests.

    fake_oci.py elsewhere   asks for Basic credentials, and sends uploads to another
                            port (another origin), which notes the Authorization
                            headers it is given; `GET /seen` there returns them as JSON
    fake_oci.py silent      accepts connections and never answers

Prints `ready PORT OTHERPORT`, and exits when its stdin closes.
"""

import http.server
import json
import socket
import sys
import threading

MODE = sys.argv[1]
SEEN = []


class Other(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_PUT(self):
        SEEN.append(self.headers.get("Authorization"))
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        body = json.dumps(SEEN).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Registry(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _challenge(self):
        if self.headers.get("Authorization") is None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return True
        return False

    def do_HEAD(self):
        if self._challenge():
            return
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        if self._challenge():
            return
        self.send_response(202)
        self.send_header("Location", f"http://127.0.0.1:{OTHER}/upload/1")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_PUT(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self._challenge():
            return
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()


other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Other)
OTHER = other.server_address[1]
threading.Thread(target=other.serve_forever, daemon=True).start()
if MODE == "silent":
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    held = []
    threading.Thread(target=lambda: [held.append(listener.accept()) for _ in iter(int, 1)],
                     daemon=True).start()
else:
    registry = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    port = registry.server_address[1]
    threading.Thread(target=registry.serve_forever, daemon=True).start()
print("ready", port, OTHER, flush=True)
sys.stdin.read()
