"""cleanup (exit handler): delete training jobs this pipeline run launched that are still there."""

from kfp import dsl

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def cleanup(backend: str, namespace: str, pipeline_run: str) -> int:
    """Runs whether the pipeline succeeded or failed. On kubernetes it deletes every PyTorchJob/TFJob
    labelled with this run (and every TrainJob, on Kubeflow Trainer v2) (a train step that was cancelled never reached its own delete); locally the
    training processes ended with their step, so there is nothing to delete. Returns the count deleted."""
    if backend != "kubernetes":
        print(f"cleanup: local backend, no cluster jobs for run {pipeline_run}")
        return 0
    from ytlabel.platform.cluster import delete_run_jobs

    deleted = delete_run_jobs(namespace, pipeline_run)
    print(f"cleanup: deleted {deleted} job(s) of run {pipeline_run} in {namespace}")
    return deleted
