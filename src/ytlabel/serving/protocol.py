"""Where KServe 0.21's REST server departs from the Open Inference Protocol, mended in this one place.

`ytlabel serve` runs KServe's own `ModelServer`; `conform(server)` adjusts it before it binds:

- **bind address**: KServe hard-codes host 0.0.0.0 in its uvicorn config; the server binds `host` (the hook into
  KServe's private REST server object is in compat.py, with every other private-API use).
- **a JSON body without a JSON content type** (NVIDIA Triton's client sends none, nor does `curl -d` without
  `-H`): KServe keeps such a body as bytes and refuses it for lacking `Inference-Header-Content-Length`.
  Under the binary tensor extension a missing header means the whole body is the JSON header, so it is
  decoded as that.
- **a binary body whose tensors do not fit its header**: KServe fails in its decoder and answers 500; it
  is the client's mistake, answered 400 naming it.
- **a body FastAPI cannot validate** (not JSON, a V1 body on the V2 route): FastAPI answers 422 with its
  own shape and the whole request echoed back; the protocol's answer is 400 `{"error": "..."}`, here
  naming the first field at fault and never echoing the input.
- **`GET /v2`** lists the extensions served: KServe's, plus `binary_tensor_data`.
- **`GET /v2/models/<name>`** says which registry version and framework serve the model (`versions`,
  `platform`); the tensors themselves come from `YT8MModel.get_input_types/get_output_types`.
- every 4xx refusal counts in `ytlabel_rejected_requests_total`, KServe's own included.
- **several processes** (`ytlabel serve --workers N`): each accepts on the listening socket it inherited
  instead of binding, and `/metrics` sums all of them (KServe's handler would show only the one answering).
"""

import logging
import os

from starlette.requests import Request

from ytlabel import compat
from ytlabel.serving.metrics import REJECTED

log = logging.getLogger("ytlabel.serve")
HEADER_LENGTH = "inference-header-content-length"  # starlette's headers are lower case
EXTENSIONS = ("binary_tensor_data",)


def conform(server, host: str, listen_fd: int | None = None) -> None:
    """Adjusts a `kserve.ModelServer` (not started yet) as the module docstring says; with `listen_fd` it
    accepts on that inherited listening socket instead of binding `host` (a worker of `serve_processes`)."""
    dataplane = server.dataplane
    _decode_headerless_and_malformed_bodies(dataplane)
    _list_extensions(dataplane)
    _describe_versions(dataplane)
    compat.kserve_before_serving(server, host, listen_fd, _add_protocol_handlers)


def _decode_headerless_and_malformed_bodies(dataplane) -> None:
    from kserve.errors import InvalidInput
    from kserve.protocol.infer_type import InferRequest

    decode = dataplane.decode_inference_request

    def decoded(body, headers, model_name):
        if not isinstance(body, bytes):
            return decode(body, headers, model_name)
        json_length = headers.get(HEADER_LENGTH)
        try:
            if json_length is None:  # the extension's rule: no header length, the whole body is JSON
                return InferRequest.from_bytes(body, len(body), model_name)
            return decode(body, headers, model_name)
        except InvalidInput as error:
            if json_length is not None:
                raise
            raise InvalidInput(
                f"the request body ({len(body)} bytes) is not an inference request in JSON: {_first_line(error)}"
            ) from error
        except (ValueError, TypeError, KeyError, IndexError) as error:
            if json_length is None:
                raise InvalidInput(
                    f"the request body ({len(body)} bytes) is not an inference request in JSON: {_first_line(error)}"
                ) from error
            raise InvalidInput(
                f"the binary request body ({len(body)} bytes) does not match its JSON header: {_first_line(error)}"
            ) from error

    dataplane.decode_inference_request = decoded


def _list_extensions(dataplane) -> None:
    metadata = dataplane.metadata

    def listed():
        answer = metadata()
        answer["extensions"] = [*answer.get("extensions", []), *EXTENSIONS]
        return answer

    dataplane.metadata = listed


def _describe_versions(dataplane) -> None:
    model_metadata = dataplane.model_metadata

    async def described(model_name):
        answer = await model_metadata(model_name)
        model = dataplane.get_model_from_registry(model_name)
        manifest = getattr(model, "manifest", None) or {}
        if manifest.get("version") is not None:
            answer["versions"] = [str(manifest["version"])]
        if manifest.get("framework"):
            answer["platform"] = f"ytlabel_{manifest['framework']}"
        return answer

    dataplane.model_metadata = described


def _add_protocol_handlers(app) -> None:
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from kserve.errors import InvalidInput

    kserve_invalid_input = app.exception_handlers[InvalidInput]

    async def invalid_input(request, error):
        REJECTED.labels(_model(request), _protocol(request)).inc()
        return await kserve_invalid_input(request, error)

    async def unreadable_body(request, error):
        REJECTED.labels(_model(request), _protocol(request)).inc()
        return JSONResponse(status_code=400, content={"error": _describe(error, _protocol(request))})

    app.add_exception_handler(InvalidInput, invalid_input)
    app.add_exception_handler(RequestValidationError, unreadable_body)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # one of several server processes: /metrics adds them all up
        app.add_api_route("/metrics", _all_processes_metrics, methods=["GET"])
        app.router.routes.insert(0, app.router.routes.pop())  # first: it is matched before KServe's own


async def _all_processes_metrics(request: Request):
    from fastapi.responses import Response
    from prometheus_client import CollectorRegistry, exposition, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    encoder, content_type = exposition.choose_encoder(request.headers.get("accept", ""))
    return Response(content=encoder(registry), headers={"content-type": content_type})


def _describe(error, protocol: str) -> str:
    """The first validation problem, by field, without the input it was about."""
    problems = error.errors()
    if not problems:
        return "the request body could not be read"
    first = problems[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    if first.get("type") == "json_invalid":
        return f"the body is not JSON ({first.get('msg', '')}); send an inference request as JSON"
    hint = ' (a V1 body {"instances": [...]} goes to /v1/models/<name>:predict)' if protocol == "v2" else ""
    return f"{where or 'body'}: {first.get('msg', 'invalid')}{hint}"


def _model(request) -> str:
    return request.path_params.get("model_name", "")


def _protocol(request) -> str:
    return "v2" if request.url.path.startswith("/v2") else "v1"


def _first_line(error: Exception) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0][:200]
