"""A stand-in for the Hugging Face Hub on 127.0.0.1, for huggingface_hub's real client
to download from (HF_ENDPOINT), so the tests get a cache written by the real tool.

Serves one repository at one commit: the files below the folder given as the first
argument, under the commit given as the second. Answers what `snapshot_download` and
`hf_hub_download` ask: the revision and tree APIs, and HEAD and GET of each file under
`/{repo}/resolve/{revision}/{path}`. Prints `ready PORT`, and exits when its stdin
closes.
"""

import hashlib
import http.server
import json
import os
import sys
import threading

ROOT = sys.argv[1]
COMMIT = sys.argv[2]


def files():
    out = {}
    for dirpath, _, names in os.walk(ROOT):
        for name in names:
            full = os.path.join(dirpath, name)
            out[os.path.relpath(full, ROOT)] = full
    return out


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _json(self, value):
        body = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _file(self, head):
        parts = self.path.split("?")[0].split("/")
        # /ORG/NAME/resolve/REVISION/PATH...
        if len(parts) < 6 or parts[3] != "resolve":
            self.send_response(404)
            self.end_headers()
            return
        full = files().get("/".join(parts[5:]))
        if full is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.end_headers()
            return
        data = open(full, "rb").read()
        self.send_response(200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", '"%s"' % hashlib.sha256(data).hexdigest())
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def do_HEAD(self):
        self._file(True)

    def do_GET(self):
        if self.path.startswith("/api/models/") and "/tree/" in self.path:
            self._json([
                {"type": "file", "path": rel, "size": os.path.getsize(full),
                 "oid": hashlib.sha1(open(full, "rb").read()).hexdigest()}
                for rel, full in sorted(files().items())
            ])
        elif self.path.startswith("/api/models/"):
            self._json({"id": "/".join(self.path.split("/")[3:5]), "sha": COMMIT,
                        "siblings": [{"rfilename": rel} for rel in sorted(files())]})
        elif self.path.startswith("/api/"):
            self._json({})
        else:
            self._file(False)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("ready", server.server_address[1], flush=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
sys.stdin.read()
