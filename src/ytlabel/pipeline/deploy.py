"""deploy: serve the champion with KServe, on a cluster (an InferenceService) or locally (a ModelServer on
127.0.0.1 asked about one real video)."""

import base64
import json
import urllib.request

from ytlabel.data import reader
from ytlabel.models.spec import ARCHITECTURES
from ytlabel.pipeline.dataset import DatasetSplit


def deploy(model_ref: str, registry: str, backend: str, namespace: str, data: DatasetSplit) -> tuple[str, str]:
    """kubernetes: creates or updates the InferenceService of `model_ref` and waits until it is Ready.
    local: serves the version on 127.0.0.1 and asks about the first evaluation video.

    Returns (a Markdown account for the UI, the URL or the JSON answer).
    """
    from ytlabel.registry import Registry

    store = Registry(registry)
    name, version = store.resolve(model_ref)
    manifest = store.manifest(name, version)
    if backend == "kubernetes":
        from ytlabel.platform.launch import apply_inference_service

        url = apply_inference_service(name, f"{registry.rstrip('/')}/{name}/{version}", namespace)
        return f"Serving **{name}:{version}** at `{url}`\n", url
    video = first_video(data.eval[ARCHITECTURES[manifest["arch"]].level])
    prediction = serve_and_ask(f"{name}:{version}", registry, video)
    lines = [f"Video `{video['id']}` (true labels {video['labels']}) -> {name}:{version} "
             f"({manifest['arch']}/{manifest['framework']}):", ""]
    lines += [f"- {label['name'] or label['id']} ({label['genre']}): {label['score']:.3f}"
              for label in prediction["labels"]]
    lines += ["", "Genres: " + ", ".join(f"{g['genre']} {g['score']:.3f}" for g in prediction["genres"])]
    return "\n".join(lines) + "\n", json.dumps(prediction)


def first_video(shards: list[str]) -> dict:
    """A V1 instance built from the first record of `shards` (a real request for the deployed model)."""
    record = next(iter(reader.read_shard(shards[0])))
    if hasattr(record, "num_frames"):
        frames = {name: [{"b64": base64.b64encode(row.tobytes()).decode()} for row in codes]
                  for name, codes in (("rgb", record.rgb), ("audio", record.audio))}
        return {"id": record.id, "labels": record.labels.tolist(), "instance": frames}
    return {"id": record.id, "labels": record.labels.tolist(),
            "instance": {"mean_rgb": record.rgb.tolist(), "mean_audio": record.audio.tolist()}}


def serve_and_ask(model_ref: str, registry: str, video: dict, timeout_s: float = 120.0) -> dict:
    """Starts `ytlabel serve` on a free 127.0.0.1 port, sends one V1 request, stops it; returns the answer."""
    from ytlabel.serving.server import running

    name = model_ref.split("@")[0].split(":")[0]
    with running("--model", model_ref, "--registry", registry, "--top-k", "5", timeout_s=timeout_s) as url:
        body = json.dumps({"instances": [video["instance"]]}).encode()
        request = urllib.request.Request(f"{url}/v1/models/{name}:predict", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())["predictions"][0]
