"""deploy: serve the champion with KServe, on the cluster (InferenceService) or locally (ModelServer)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE)
def deploy(model_ref: str, registry: str, backend: str, namespace: str, dataset: Input[Dataset],
           answer: Output[Markdown]) -> str:
    """kubernetes: creates or updates the InferenceService of `model_ref` (storageUri in the registry)
    and waits until it is Ready. local: starts `ytlabel serve` on 127.0.0.1, sends one real video from
    the evaluation shards, records the answer, and stops the server."""
    import json

    from ytlabel.models.spec import ARCHITECTURES
    from ytlabel.platform import steps
    from ytlabel.registry import Registry

    name, version = Registry(registry).resolve(model_ref)
    manifest = Registry(registry).manifest(name, version)
    if backend == "kubernetes":
        from ytlabel.platform.launch import apply_inference_service

        url = apply_inference_service(name, f"{registry.rstrip('/')}/{name}/{version}", namespace)
        with open(answer.path, "w") as handle:
            handle.write(f"Serving **{name}:{version}** at `{url}`\n")
        return url
    data = steps.DatasetManifest.load(f"{dataset.path}/dataset.json")
    video = steps.first_video(data.eval[ARCHITECTURES[manifest["arch"]].level])
    prediction = steps.serve_and_ask(f"{name}:{version}", registry, video)
    lines = [f"Video `{video['id']}` (true labels {video['labels']}) -> {name}:{version} "
             f"({manifest['arch']}/{manifest['framework']}):", ""]
    lines += [f"- {label['name'] or label['id']} ({label['genre']}): {label['score']:.3f}" for label in prediction["labels"]]
    lines += ["", "Genres: " + ", ".join(f"{g['genre']} {g['score']:.3f}" for g in prediction["genres"])]
    with open(answer.path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return json.dumps(prediction)
