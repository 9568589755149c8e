"""deploy: serve the champion with KServe, on the cluster (InferenceService) or locally (ModelServer)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def deploy(
    model_ref: str, registry: str, backend: str, namespace: str, dataset: Input[Dataset], answer: Output[Markdown]
) -> str:
    """kubernetes: creates or updates the InferenceService of `model_ref` (storageUri in the registry)
    and waits until it is Ready. local: starts `ytlabel serve` on 127.0.0.1, sends one real video from
    the evaluation shards, records the answer, and stops the server."""
    from ytlabel.pipeline.dataset import DatasetSplit
    from ytlabel.pipeline.deploy import deploy as serve

    text, output = serve(model_ref, registry, backend, namespace, DatasetSplit.load(dataset.path))
    with open(answer.path, "w") as handle:
        handle.write(text)
    print(text, end="")
    return output
