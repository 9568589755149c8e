"""register: publish the winning run to the model registry and promote it to champion."""

from kfp import dsl

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE)
def register(winner: dict, registry: str, model_name: str) -> str:
    """Pushes the run as the next version of `model_name` (files first, manifest last), points the
    `champion` alias at it, and returns the reference NAME:VERSION."""
    from ytlabel.registry import Registry
    from ytlabel.training.outputs import RunDir

    store = Registry(registry)
    manifest = store.push(RunDir(winner["run_dir"]).local, model_name)
    store.promote(model_name, manifest["version"], "champion")
    print(f"register: {model_name}:{manifest['version']} ({winner['arch']}/{winner['framework']}, "
          f"GAP@20 {winner['gap_at_20']:.4f}) is now {model_name}@champion in {registry}")
    return f"{model_name}:{manifest['version']}"
