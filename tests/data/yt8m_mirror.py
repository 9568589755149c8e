"""A YouTube-8M mirror on 127.0.0.1 with the official layout, and the faults a real one has.

`/VERSION/download_plans/LEVEL_SPLIT.json` serves a plan, `/VERSION/LEVEL/SPLIT/NAME` the files, with
ranged GETs (206). Per file a fault can be set: "drop" sends the full Content-Length but closes the
connection halfway through the body, once; "missing" answers 404. A plan entry may also carry a wrong md5
(the test's choice, not the server's). Every request is recorded as (path, Range header or None).
"""

import contextlib
import hashlib
import http.server
import json
import threading


class Mirror:
    def __init__(self, partition: str, files: dict[str, bytes]):
        version, level, split = partition.split("/")
        self.plan_path = f"/{version}/download_plans/{level}_{split}.json"
        self.prefix = f"/{partition}/"
        self.files = dict(files)
        self.plan = {name: hashlib.md5(body).hexdigest() for name, body in files.items()}
        self.faults: dict[str, str] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.raw_plan: bytes | None = None  # served instead of the plan when set (a hostile plan)

    def body_of_plan(self) -> bytes:
        return self.raw_plan if self.raw_plan is not None else json.dumps({"files": self.plan}).encode()


def _handler(mirror: Mirror):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            mirror.requests.append((self.path, self.headers.get("Range")))
            if self.path == mirror.plan_path:
                return self._send(200, mirror.body_of_plan())
            name = self.path.removeprefix(mirror.prefix)
            if (
                not self.path.startswith(mirror.prefix)
                or name not in mirror.files
                or mirror.faults.get(name) == "missing"
            ):
                return self._send(404, b"not found")
            body, start = mirror.files[name], 0
            ranged = self.headers.get("Range")
            if ranged:
                start = int(ranged.removeprefix("bytes=").rstrip("-"))
            if mirror.faults.get(name) == "drop":
                mirror.faults.pop(name)  # once
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return None
            return self._send(206 if ranged else 200, body[start:])

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextlib.contextmanager
def serving(mirror: Mirror):
    """Serves `mirror` on a free 127.0.0.1 port; yields the base URL; stops the server on exit."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(mirror))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
