"""deploy: serve the champion with KServe, on a cluster (an InferenceService) or locally (a ModelServer on
127.0.0.1 asked about three held-out videos: their true labels beside the predicted ones)."""

import json
import urllib.request

from ytlabel.data import reader
from ytlabel.data.vocabulary import load_vocabulary
from ytlabel.pipeline.dataset import DatasetSplit
from ytlabel.serving import payload


def deploy(model_ref: str, registry: str, backend: str, namespace: str, data: DatasetSplit) -> tuple[str, str]:
    """kubernetes: creates or updates the InferenceService of `model_ref` and waits until it is Ready.
    local: serves the version on 127.0.0.1 and asks about three held-out videos, true labels beside predicted.

    Returns (a Markdown account for the UI, the URL or the JSON answer).
    """
    from ytlabel.registry import Registry

    store = Registry(registry)
    name, version = store.resolve(model_ref)
    manifest = store.manifest(name, version)
    if backend == "kubernetes":
        from ytlabel.platform.deploy import apply_inference_service

        url = apply_inference_service(name, f"{registry.rstrip('/')}/{name}/{version}", namespace)
        return f"Serving **{name}:{version}** at `{url}`\n", url
    level = manifest["level"]  # from the version: an ensemble is no architecture of the grid
    videos = held_out_videos(data.eval[level], count=3)
    answers = serve_and_ask(f"{name}:{version}", registry, videos)
    kind = "generated" if level in data.synthetic else "real"
    lines = [
        (
            f"{name}:{version} ({manifest['arch']}/{manifest['framework']}) asked about {len(videos)} {kind} "
            f"videos ({level} level) it never trained on; true labels beside the predicted ones (hits in bold):"
        ),
        "",
    ]
    for video, answer in zip(videos, answers):
        lines += describe(video, answer)
    return "\n".join(lines), json.dumps(answers)


def held_out_videos(shards: list[str], count: int) -> list[dict]:
    """V1 instances built from the first `count` records of `shards` (real requests for the deployed model)."""
    videos = []
    for shard in shards:
        for record in reader.read_shard(shard):
            videos.append(_instance(record))
            if len(videos) == count:
                return videos
    return videos


def _instance(record) -> dict:
    return {"id": record.id, "labels": record.labels.tolist(), "instance": payload.instance(record)}


def describe(video: dict, answer: dict) -> list[str]:
    """Markdown lines: a video's true labels (with genres) beside the model's top labels; hits marked."""
    vocabulary = load_vocabulary()
    truth = set(video["labels"])
    true = ", ".join(f"{vocabulary.name(label) or label} ({vocabulary.genre(label)})" for label in video["labels"])
    predicted = ", ".join(
        f"{'**' if label['id'] in truth else ''}{label['name'] or label['id']}"
        f"{'**' if label['id'] in truth else ''} {label['score']:.2f}"
        for label in answer["labels"]
    )
    genres = ", ".join(f"{genre['genre']} {genre['score']:.2f}" for genre in answer["genres"])
    return [
        f"- video `{video['id']}`",
        f"  - true:      {true}",
        f"  - predicted: {predicted}",
        f"  - genres:    {genres}",
        "",
    ]


def serve_and_ask(model_ref: str, registry: str, videos: list[dict], timeout_s: float = 120.0) -> list[dict]:
    """Starts `ytlabel serve` on a free 127.0.0.1 port, sends one V1 request with `videos`, stops it; returns
    the answers in order."""
    from ytlabel.serving.server import running

    name = model_ref.split("@")[0].split(":")[0]
    with running("--model", model_ref, "--registry", registry, "--top-k", "5", timeout_s=timeout_s) as url:
        body = json.dumps({"instances": [video["instance"] for video in videos]}).encode()
        request = urllib.request.Request(
            f"{url}/v1/models/{name}:predict", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())["predictions"]
