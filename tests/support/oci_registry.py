"""The OCI registry the integration tests push to: Debian's `docker-registry`
(the CNCF distribution registry) on 127.0.0.1, storing under a temp folder.

Picks a free port, starts the registry, waits until `/v2/` answers, and prints one
line, `ready PORT`. Stops the registry and removes its storage when its stdin closes,
so the registry never outlives the test process that started it.
"""

import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    root = tempfile.mkdtemp(prefix="mreg-oci-registry-")
    port = free_port()
    config = os.path.join(root, "config.yml")
    with open(config, "w") as f:
        f.write(
            "version: 0.1\n"
            "log:\n  level: error\n"
            f"storage:\n  filesystem:\n    rootdirectory: {root}/data\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{port}\n"
        )
    registry = subprocess.Popen(
        ["docker-registry", "serve", config],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                conn.request("GET", "/v2/")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if registry.poll() is not None:
                print("failed: docker-registry exited", flush=True)
                return
            time.sleep(0.05)
        else:
            print("failed: docker-registry did not answer", flush=True)
            return
        print(f"ready {port}", flush=True)
        sys.stdin.read()
    finally:
        registry.terminate()
        try:
            registry.wait(timeout=5)
        except subprocess.TimeoutExpired:
            registry.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
