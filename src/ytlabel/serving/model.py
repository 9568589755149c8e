"""The KServe predictor: a `kserve.Model` that loads a registry version (or KServe's /mnt/models).

`load()` verifies every file against manifest.json, loads the PyTorch or Keras model through
`ytlabel.models.predictor`, and sets `ready`. `predict()` accepts V1 (`{"instances": [...]}`) and
V2 (Open Inference Protocol) requests; payload rules are in `serving/payload.py`. Concurrent requests
share forward passes (`serving/batching.py`). KServe already times requests and counts them; the
metrics here are the domain ones.
"""

import json
import logging
import os
import uuid

import numpy as np
from kserve import InferOutput, InferRequest, InferResponse, Model
from kserve.errors import InferenceError, InvalidInput
from kserve.protocol.infer_type import RequestedOutput

from ytlabel import runs, storage
from ytlabel.data import schema
from ytlabel.data.examples import VIDEO
from ytlabel.data.vocabulary import load_vocabulary
from ytlabel.errors import YtlabelError
from ytlabel.models.predictor import load_predictor
from ytlabel.registry.contents import file_digest
from ytlabel.serving import payload as payloads
from ytlabel.serving.batching import Batcher, BatchingOptions
from ytlabel.serving.metrics import FORWARD_VIDEOS, FRAMES, PREDICTIONS, VIDEOS

log = logging.getLogger("ytlabel.serve")


class YT8MModel(Model):
    def __init__(
        self,
        name: str,
        model_dir: str,
        top_k: int = 20,
        top_genres: int = 3,
        batching: BatchingOptions | None = None,
    ):
        super().__init__(name)
        self.model_dir = model_dir
        self.top_k, self.top_genres = top_k, top_genres
        self.batching = batching or BatchingOptions()
        self.manifest: dict | None = None
        self.predictor = None
        self.batcher: Batcher | None = None
        self.vocabulary = None
        self.classes: int | None = None  # the model's output width, known once loaded

    def load(self) -> bool:
        """Checks the manifest's sha256 for every file, then loads the model; raises YtlabelError if unusable."""
        self.manifest = verify_model_dir(self.model_dir)
        # The model is loaded, probed, warmed up and run on the batcher's one forward thread (batching.py).
        self.batcher = Batcher(self._forward, self.batching)
        self.predictor = self.batcher.call(load_predictor, self.model_dir)
        if self.predictor.options.target != "classes":
            raise YtlabelError(
                f"{self.model_dir}: a model trained on {self.predictor.options.target} only; the "
                f"server answers class labels (with genres derived from them)"
            )
        probe = self.batcher.call(self.predictor.predict, _probe_batch(self.predictor.options))
        if not np.isfinite(probe).all():  # e.g. weights that diverged to NaN: never answer null scores
            raise YtlabelError(
                f"{self.model_dir}: the model's scores for a probe input are not finite; refusing to serve it"
            )
        self.classes = probe.shape[1]
        shapes = self.batcher.call(self.predictor.warm_up)  # Keras frame models: compile every shape bucket
        if shapes:
            log.info("%s: compiled %d input shapes ahead of requests", self.name, shapes)
        self.vocabulary = load_vocabulary()
        self.ready = True
        return self.ready

    def _forward(self, inputs: dict) -> np.ndarray:
        FORWARD_VIDEOS.labels(self.name).observe(len(inputs["rgb"]))
        return self.predictor.predict(inputs)

    async def predict(
        self, payload: dict | InferRequest, headers: dict[str, str] | None = None
    ) -> dict | InferResponse:
        v2 = isinstance(payload, InferRequest)
        try:
            batch = self._v2_batch(payload) if v2 else self._v1_batch(payload)
            wanted = self._requested_outputs(payload) if v2 else None
        except payloads.PayloadError as error:
            raise InvalidInput(str(error)) from error  # answered 400 and counted by serving/protocol.py
        logits = await self.batcher(batch.inputs)
        if not np.isfinite(logits).all():
            raise InferenceError("the model produced non-finite scores for this input; no answer is given")
        answers = payloads.answers(logits, self.vocabulary, self.top_k, self.top_genres)
        VIDEOS.labels(self.name).observe(len(answers))
        for count in batch.frames:
            FRAMES.labels(self.name).observe(count)
        for answer in answers:
            PREDICTIONS.labels(self.name, answer["genres"][0]["genre"]).inc()
        if v2:
            return self._v2_response(payload, answers, wanted)
        return {"predictions": answers, "model_name": self.name, "model_version": self.version}

    @property
    def version(self) -> str | None:
        """The registry version being served (None for a directory that never went through the registry)."""
        version = (self.manifest or {}).get("version")
        return None if version is None else str(version)

    # --- V2 model metadata (GET /v2/models/<name>) -------------------------------------------------
    def get_input_types(self) -> list[dict]:
        if self.predictor is None or self.predictor.options.level == VIDEO:
            return [
                {"name": "mean_rgb", "datatype": "FP32", "shape": [-1, schema.RGB_DIM]},
                {"name": "mean_audio", "datatype": "FP32", "shape": [-1, schema.AUDIO_DIM]},
            ]
        # Frames may also come as UINT8 (the quantized codes of the TFRecords); metadata has one datatype each.
        return [
            {"name": "rgb", "datatype": "FP32", "shape": [-1, -1, schema.RGB_DIM]},
            {"name": "audio", "datatype": "FP32", "shape": [-1, -1, schema.AUDIO_DIM]},
            {"name": "num_frames", "datatype": "INT64", "shape": [-1]},
        ]

    def get_output_types(self) -> list[dict]:
        return [
            {"name": name, "datatype": datatype, "shape": [-1, self._width(name)]} for name, datatype in OUTPUTS.items()
        ]

    def _width(self, output: str) -> int:
        return self.top_genres if output.startswith("genre") else min(self.top_k, self.classes or self.top_k)

    # --- protocol plumbing -----------------------------------------------------------------------
    def _v1_batch(self, body) -> payloads.Batch:
        if isinstance(body, bytes):  # KServe leaves non-JSON content types undecoded (curl -d sends a form type)
            try:
                body = json.loads(body)
            except ValueError as error:
                raise payloads.PayloadError(
                    'the body is not JSON; send {"instances": [...]} with Content-Type: application/json'
                ) from error
        if not isinstance(body, dict) or "instances" not in body:
            raise payloads.PayloadError('V1 body must be {"instances": [...]}')
        return payloads.from_instances(body["instances"], self.predictor.options)

    def _v2_batch(self, request: InferRequest) -> payloads.Batch:
        tensors = {}
        for item in request.inputs:
            try:
                array = item.as_numpy()
            except Exception as error:  # kserve raises plain errors for data that does not fit the shape
                raise payloads.PayloadError(
                    f"input {item.name!r}: data does not match shape {item.shape} and datatype {item.datatype}"
                ) from error
            tensors[item.name] = (item.datatype, array)
        return payloads.from_tensors(tensors, self.predictor.options)

    @staticmethod
    def _requested_outputs(request: InferRequest) -> dict[str, bool]:
        """Output name -> sent as raw bytes, in the order asked (all outputs when none are named).

        Each output's `binary_data` parameter wins over the request's `binary_data_output`."""
        default = bool((request.parameters or {}).get("binary_data_output", False))
        if not request.request_outputs:
            return {name: default for name in OUTPUTS}
        wanted = {}
        for output in request.request_outputs:
            if output.name not in OUTPUTS:
                raise payloads.PayloadError(
                    f"requested output {output.name!r} does not exist; this model answers {', '.join(OUTPUTS)}"
                )
            binary = output.binary_data
            wanted[output.name] = default if binary is None else bool(binary)
        return wanted

    def _v2_response(self, request: InferRequest, answers: list[dict], wanted: dict[str, bool]) -> InferResponse:
        n = len(answers)
        tensors = {
            "class_ids": np.array([[label["id"] for label in a["labels"]] for a in answers], dtype=np.int32),
            "scores": np.array([[label["score"] for label in a["labels"]] for a in answers], dtype=np.float32),
            "labels": np.array([[label["name"] for label in a["labels"]] for a in answers], dtype=object),
            "genres": np.array([[genre["genre"] for genre in a["genres"]] for a in answers], dtype=object),
            "genre_scores": np.array([[genre["score"] for genre in a["genres"]] for a in answers], dtype=np.float32),
        }
        outputs = []
        for name, datatype in OUTPUTS.items():
            output = InferOutput(name, list(tensors[name].reshape(n, -1).shape), datatype)
            output.set_data_from_numpy(tensors[name].reshape(n, -1), binary_data=False)
            outputs.append(output)
        # KServe's to_rest() writes exactly the requested outputs, each as JSON or raw bytes as asked.
        requested = [RequestedOutput(name, {"binary_data": binary}) for name, binary in wanted.items()]
        return InferResponse(
            request.id or str(uuid.uuid4()), self.name, outputs, model_version=self.version, requested_outputs=requested
        )


OUTPUTS = {"class_ids": "INT32", "scores": "FP32", "labels": "BYTES", "genres": "BYTES", "genre_scores": "FP32"}


def _probe_batch(options) -> dict:
    """One all-zero video in the model's input layout (one frame for frame-level models)."""
    if options.level == VIDEO:
        return {"rgb": np.zeros((1, schema.RGB_DIM), np.float32), "audio": np.zeros((1, schema.AUDIO_DIM), np.float32)}
    return {
        "rgb": np.zeros((1, options.max_frames, schema.RGB_DIM), np.float32),
        "audio": np.zeros((1, options.max_frames, schema.AUDIO_DIM), np.float32),
        "num_frames": np.ones(1, np.int64),
    }


def verify_model_dir(model_dir: str) -> dict:
    """The manifest of a pulled registry version after checking every listed file's sha256.

    Raises:
        YtlabelError: no manifest (not a registry version), or a file missing or altered.
    """
    path = os.path.join(model_dir, runs.VERSION_MANIFEST)
    if not os.path.exists(path):
        raise YtlabelError(
            f"{model_dir}: no manifest.json; serve a registry version "
            f"(`ytlabel registry pull`, or KServe's storage initializer from the registry)"
        )
    with open(path) as handle:
        manifest = json.load(handle)
    for relative, entry in sorted(manifest["files"].items()):
        try:
            storage.check_key(relative, "manifest.json file")  # written by someone else: stays inside model_dir
        except storage.StorageError as error:
            raise YtlabelError(f"{model_dir}: {error}") from None
        file_path = os.path.join(model_dir, *relative.split("/"))
        if not os.path.exists(file_path):
            raise YtlabelError(f"{model_dir}: {relative} is listed in manifest.json but missing")
        if file_digest(file_path)["sha256"] != entry["sha256"]:
            raise YtlabelError(f"{model_dir}: {relative} does not match its sha256 in manifest.json")
    return manifest
