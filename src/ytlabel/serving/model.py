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
from prometheus_client import Counter, Histogram

from ytlabel import runs, storage
from ytlabel.data import schema
from ytlabel.data.vocabulary import load_vocabulary
from ytlabel.errors import YtlabelError
from ytlabel.models.predictor import load_predictor
from ytlabel.registry.contents import file_digest
from ytlabel.serving import payload as payloads
from ytlabel.serving.batching import Batcher, BatchingOptions

log = logging.getLogger("ytlabel.serve")
PREDICTIONS = Counter("ytlabel_predictions", "Videos answered, by the genre ranked first", ["model", "genre"])
FRAMES = Histogram("ytlabel_request_frames", "Frames per video in frame-level requests (as sent)", ["model"],
                   buckets=(1, 10, 30, 60, 120, 180, 240, 300))
VIDEOS = Histogram("ytlabel_request_videos", "Videos per request", ["model"], buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
REJECTED = Counter("ytlabel_rejected_requests", "Requests refused with 400, by protocol", ["model", "protocol"])
FORWARD_VIDEOS = Histogram("ytlabel_forward_videos", "Videos per forward pass (requests batched together)", ["model"],
                           buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))


class YT8MModel(Model):
    def __init__(self, name: str, model_dir: str, top_k: int = 20, top_genres: int = 3,
                 batching: BatchingOptions = BatchingOptions()):
        super().__init__(name)
        self.model_dir = model_dir
        self.top_k, self.top_genres = top_k, top_genres
        self.batching = batching
        self.manifest: dict | None = None
        self.predictor = None
        self.batcher: Batcher | None = None
        self.vocabulary = None

    def load(self) -> bool:
        """Checks the manifest's sha256 for every file, then loads the model; raises YtlabelError if unusable."""
        self.manifest = verify_model_dir(self.model_dir)
        # The model is loaded, probed, warmed up and run on the batcher's one forward thread (batching.py).
        self.batcher = Batcher(self._forward, self.batching)
        self.predictor = self.batcher.call(load_predictor, self.model_dir)
        if self.predictor.options.target != "classes":
            raise YtlabelError(f"{self.model_dir}: a model trained on {self.predictor.options.target} only; the "
                               f"server answers class labels (with genres derived from them)")
        probe = self.batcher.call(self.predictor.predict, _probe_batch(self.predictor.options))
        if not np.isfinite(probe).all():  # e.g. weights that diverged to NaN: never answer null scores
            raise YtlabelError(f"{self.model_dir}: the model's scores for a probe input are not finite; "
                               f"refusing to serve it")
        shapes = self.batcher.call(self.predictor.warm_up)  # Keras frame models: compile every shape bucket
        if shapes:
            log.info("%s: compiled %d input shapes ahead of requests", self.name, shapes)
        self.vocabulary = load_vocabulary()
        self.ready = True
        return self.ready

    def _forward(self, inputs: dict) -> np.ndarray:
        FORWARD_VIDEOS.labels(self.name).observe(len(inputs["rgb"]))
        return self.predictor.predict(inputs)

    async def predict(self, payload: dict | InferRequest, headers: dict[str, str] | None = None) -> dict | InferResponse:
        v2 = isinstance(payload, InferRequest)
        try:
            batch = self._v2_batch(payload) if v2 else self._v1_batch(payload)
        except payloads.PayloadError as error:
            REJECTED.labels(self.name, "v2" if v2 else "v1").inc()
            raise InvalidInput(str(error)) from error
        logits = await self.batcher(batch.inputs)
        if not np.isfinite(logits).all():
            raise InferenceError("the model produced non-finite scores for this input; no answer is given")
        answers = payloads.answers(logits, self.vocabulary, self.top_k, self.top_genres)
        VIDEOS.labels(self.name).observe(len(answers))
        for count in batch.frames:
            FRAMES.labels(self.name).observe(count)
        for answer in answers:
            PREDICTIONS.labels(self.name, answer["genres"][0]["genre"]).inc()
        return self._v2_response(payload, answers) if v2 else {"predictions": answers}

    # --- protocol plumbing -----------------------------------------------------------------------
    def _v1_batch(self, body) -> payloads.Batch:
        if isinstance(body, bytes):  # KServe leaves non-JSON content types undecoded (curl -d sends a form type)
            try:
                body = json.loads(body)
            except ValueError as error:
                raise payloads.PayloadError("the body is not JSON; send {\"instances\": [...]} with "
                                            "Content-Type: application/json") from error
        if not isinstance(body, dict) or "instances" not in body:
            raise payloads.PayloadError('V1 body must be {"instances": [...]}')
        return payloads.from_instances(body["instances"], self.predictor.options)

    def _v2_batch(self, request: InferRequest) -> payloads.Batch:
        tensors = {}
        for item in request.inputs:
            try:
                array = item.as_numpy()
            except Exception as error:  # kserve raises plain errors for data that does not fit the shape
                raise payloads.PayloadError(f"input {item.name!r}: data does not match shape {item.shape} "
                                            f"and datatype {item.datatype}") from error
            tensors[item.name] = (item.datatype, array)
        return payloads.from_tensors(tensors, self.predictor.options)

    def _v2_response(self, request: InferRequest, answers: list[dict]) -> InferResponse:
        n, k, g = len(answers), len(answers[0]["labels"]), len(answers[0]["genres"])
        ids = np.array([[label["id"] for label in a["labels"]] for a in answers], dtype=np.int32)
        scores = np.array([[label["score"] for label in a["labels"]] for a in answers], dtype=np.float32)
        names = [label["name"] for a in answers for label in a["labels"]]
        genres = [genre["genre"] for a in answers for genre in a["genres"]]
        genre_scores = np.array([[genre["score"] for genre in a["genres"]] for a in answers], dtype=np.float32)
        outputs = [
            InferOutput("class_ids", [n, k], "INT32", ids.ravel().tolist()),
            InferOutput("scores", [n, k], "FP32", scores.ravel().tolist()),
            InferOutput("labels", [n, k], "BYTES", names),
            InferOutput("genres", [n, g], "BYTES", genres),
            InferOutput("genre_scores", [n, g], "FP32", genre_scores.ravel().tolist()),
        ]
        return InferResponse(request.id or str(uuid.uuid4()), self.name, outputs)


def _probe_batch(options) -> dict:
    """One all-zero video in the model's input layout (one frame for frame-level models)."""
    if options.level == "video":
        return {"rgb": np.zeros((1, schema.RGB_DIM), np.float32), "audio": np.zeros((1, schema.AUDIO_DIM), np.float32)}
    return {"rgb": np.zeros((1, options.max_frames, schema.RGB_DIM), np.float32),
            "audio": np.zeros((1, options.max_frames, schema.AUDIO_DIM), np.float32),
            "num_frames": np.ones(1, np.int64)}


def verify_model_dir(model_dir: str) -> dict:
    """The manifest of a pulled registry version after checking every listed file's sha256.

    Raises:
        YtlabelError: no manifest (not a registry version), or a file missing or altered.
    """
    path = os.path.join(model_dir, runs.VERSION_MANIFEST)
    if not os.path.exists(path):
        raise YtlabelError(f"{model_dir}: no manifest.json; serve a registry version "
                           f"(`ytlabel registry pull`, or KServe's storage initializer from the registry)")
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
