"""A FAKE of the few Kubernetes API endpoints the kubernetes backend calls, on 127.0.0.1, for tests only.

No Kubernetes API server can run on this machine (none is installable from the package registries), so
the backend's requests go through the official `kubernetes` client to this small HTTP server instead.
It is not a cluster: it stores custom objects in memory, moves each job through the conditions a
training operator would set (Created -> Running -> Succeeded, or Failed when asked; a Trainer v2
TrainJob: Created -> Complete or Failed, with a running node-0 pod found by its JobSet labels), marks an
InferenceService Ready, serves a leader pod's log, answers API discovery with the groups it is told the
cluster serves, and checks every request body it receives against the CRD schemas in strict mode
(`ytlabel.platform.validate`), recording what it was sent.
"""

import contextlib
import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ytlabel.platform.validate import problems

CUSTOM = re.compile(
    r"^/apis/(?P<group>[^/]+)/(?P<version>[^/]+)/namespaces/(?P<namespace>[^/]+)/(?P<plural>[^/]+)"
    r"(?:/(?P<name>[^/]+))?$"
)
LOG = re.compile(r"^/api/v1/namespaces/(?P<namespace>[^/]+)/pods/(?P<pod>[^/]+)/log$")
PODS = re.compile(r"^/api/v1/namespaces/(?P<namespace>[^/]+)/pods(?:/(?P<pod>[^/]+))?$")
NODE_POD_SUFFIX = "-node-0-0-x7k2p"  # JobSet's pod of node 0 (Indexed Job pods get a random suffix)


class FakeKubeAPI:
    """State of the fake: objects by (plural, namespace, name), the requests seen, and how jobs end."""

    def __init__(
        self,
        outcome: str = "Succeeded",
        polls_until_done: int = 2,
        log_lines: int = 60,
        served: tuple[str, ...] = ("kubeflow.org/v1", "serving.kserve.io/v1beta1"),
    ):
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path with query)
        self.invalid: list[str] = []  # schema problems of bodies received (a test expects none)
        self.outcome, self.polls_until_done, self.log_lines = outcome, polls_until_done, log_lines
        self.served = served  # group/version pairs API discovery reports
        self._polls: dict[tuple[str, str, str], int] = {}
        self.lock = threading.Lock()

    def progress(self, key: tuple[str, str, str]) -> None:
        """What the operator (or KServe's controller) would have done by this poll."""
        obj = self.objects[key]
        polls = self._polls[key] = self._polls.get(key, 0) + 1
        if key[0] == "inferenceservices":
            obj["status"] = {
                "url": f"http://{key[2]}.{key[1]}.example.com",
                "conditions": [{"type": "Ready", "status": "True" if polls >= 2 else "False"}],
            }
            return
        conditions = [{"type": "Created", "status": "True"}]
        if key[0] == "trainjobs":  # Trainer v2 sets no Running condition; its pods run meanwhile
            if polls >= self.polls_until_done:
                conditions.append({"type": "Complete" if self.outcome == "Succeeded" else "Failed", "status": "True"})
            obj["status"] = {"conditions": conditions}
            return
        if polls >= 1:
            conditions.append({"type": "Running", "status": "True" if polls < self.polls_until_done else "False"})
        if polls >= self.polls_until_done:
            conditions.append({"type": self.outcome, "status": "True"})
        obj["status"] = {"conditions": conditions}


class _Handler(BaseHTTPRequestHandler):
    api: FakeKubeAPI

    def log_message(self, *args):  # keep test output clean
        pass

    def _send(self, status: int, body, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _status(self, code: int, reason: str) -> None:
        self._send(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code})

    def _route(self, method: str) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parsed.query)
        api = self.api
        with api.lock:
            api.requests.append((method, self.path))
        if parsed.path.rstrip("/") == "/apis" and method == "GET":
            groups = {}
            for served in api.served:
                group, version = served.split("/")
                groups.setdefault(group, []).append({"groupVersion": served, "version": version})
            return self._send(
                200,
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [
                        {"name": group, "versions": versions, "preferredVersion": versions[0]}
                        for group, versions in groups.items()
                    ],
                },
            )
        pods = PODS.match(parsed.path)
        if pods and method == "GET":
            return self._send(200, self._pods(pods["namespace"], pods["pod"], query))
        log = LOG.match(parsed.path)
        if log and method == "GET":
            lines = [f"{log['pod']} line {i}\n" for i in range(api.log_lines)]
            tail = int(query.get("tailLines", [len(lines)])[0])
            return self._send(200, "".join(lines[-tail:]).encode(), "text/plain")
        match = CUSTOM.match(parsed.path)
        if not match:
            return self._status(404, "NotFound")
        plural, namespace, name = match["plural"], match["namespace"], match["name"]
        body = None
        if method in ("POST", "PUT"):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            rendered = body
            if method == "PUT":  # a replace carries the server's resourceVersion, which renders never hold
                rendered = {**body, "metadata": {k: v for k, v in body["metadata"].items() if k != "resourceVersion"}}
            found = problems(rendered)
            if found:
                with api.lock:
                    api.invalid.extend(found)
                return self._status(422, "Invalid")
        with api.lock:
            if method == "POST":
                key = (plural, namespace, body["metadata"]["name"])
                if key in api.objects:
                    return self._status(409, "AlreadyExists")
                api.objects[key] = {**body, "metadata": {**body["metadata"], "resourceVersion": "1"}}
                return self._send(201, api.objects[key])
            if name is None and method == "GET":
                selector = query.get("labelSelector", [""])[0]
                wanted = dict(pair.split("=", 1) for pair in selector.split(",") if pair)
                items = [
                    obj
                    for (p, ns, _), obj in api.objects.items()
                    if p == plural
                    and ns == namespace
                    and all(obj["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())
                ]
                return self._send(200, {"kind": "List", "items": items})
            key = (plural, namespace, name)
            if key not in api.objects:
                return self._status(404, "NotFound")
            if method == "GET":
                api.progress(key)
                return self._send(200, api.objects[key])
            if method == "PUT":
                api.objects[key] = {**body, "metadata": {**body["metadata"], "resourceVersion": "2"}}
                return self._send(200, api.objects[key])
            if method == "DELETE":
                del api.objects[key]
                return self._send(200, {"kind": "Status", "status": "Success"})
        return self._status(405, "MethodNotAllowed")

    def _pods(self, namespace: str, pod: str | None, query: dict) -> dict:
        """node-0 pods of the TrainJobs in `namespace` (JobSet's labels), one by name or a labelSelector list."""
        wanted = dict(pair.split("=", 1) for pair in query.get("labelSelector", [""])[0].split(",") if pair)
        items = []
        for plural, ns, name in list(self.api.objects):
            if plural != "trainjobs" or ns != namespace:
                continue
            labels = {
                "jobset.sigs.k8s.io/jobset-name": name,
                "jobset.sigs.k8s.io/replicatedjob-name": "node",
                "jobset.sigs.k8s.io/job-index": "0",
                "batch.kubernetes.io/job-completion-index": "0",
            }
            if all(labels.get(k) == v for k, v in wanted.items()):
                items.append(
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "status": {"phase": "Running"},
                        "metadata": {"name": name + NODE_POD_SUFFIX, "namespace": ns, "labels": labels},
                    }
                )
        if pod is None:
            return {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}
        return next((item for item in items if item["metadata"]["name"] == pod), {"kind": "Status", "code": 404})

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def do_PUT(self):
        self._route("PUT")

    def do_DELETE(self):
        self._route("DELETE")


@contextlib.contextmanager
def fake_kube_api(**settings):
    """Yields (FakeKubeAPI, kubernetes ApiClient pointed at it); stops the server on exit."""
    from kubernetes import client

    api = FakeKubeAPI(**settings)
    handler = type("Handler", (_Handler,), {"api": api})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    configuration = client.Configuration(host=f"http://127.0.0.1:{server.server_address[1]}")
    api_client = client.ApiClient(configuration)
    try:
        yield api, api_client
    finally:
        api_client.close()
        server.shutdown()
        server.server_close()
