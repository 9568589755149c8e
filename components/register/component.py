"""register: publish the winning run to the model registry and promote it to champion."""

from kfp import dsl

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def register(winner: dict, registry: str, model_name: str) -> str:
    """Pushes the run (local or s3://) as the next version of `model_name` (files first, manifest last),
    points the `champion` alias at it, and returns the reference NAME:VERSION."""
    from ytlabel import runs
    from ytlabel.pipeline.stages import register as publish

    ref = publish(winner, registry, model_name)
    print(
        f"register: {ref} ({runs.run_label(winner['arch'], winner['framework'], winner['expansion'])}, "
        f"GAP@20 {winner['gap_at_20']:.4f}) is now {model_name}@champion in {registry}"
    )
    return ref
