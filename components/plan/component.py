"""plan: the training grid (architecture x framework, plus the expansion runs) for ParallelFor."""

from kfp import dsl

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def plan(architectures: list, frameworks: list, expansion_archs: list, levels: list) -> list:
    """One {arch, framework, expansion} per training job. Fails, naming them, if an architecture needs
    a data level the dataset lacks (frame-level models on video-level shards)."""
    from ytlabel.pipeline.dataset import plan_runs

    runs = plan_runs(architectures, frameworks, expansion_archs, levels)
    for run in runs:
        print(f"plan: {run['arch']}/{run['framework']}{' + expansion' if run['expansion'] else ''}")
    return runs
