"""ingest: resolve (or synthesise) YT8M shards, subsample, and split them into train and eval."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def ingest(
    data_source: str,
    shard_fraction: float,
    eval_fraction: float,
    synthetic_videos: int,
    run_root: str,
    pipeline_run: str,
    dataset: Output[Dataset],
) -> list:
    """Writes the dataset manifest (shards per level and split) and returns the levels present.

    Args:
        data_source: comma-separated parts: files/dirs/globs/s3://bucket/prefix of shards;
            yt8m://VERSION/LEVEL/SPLIT?shard=i/N&mirror=us (the official download, into run_root);
            "synthetic" (generated for the levels the other parts lack, copied under run_root when s3://).
        shard_fraction: keep every n-th shard, n = round(1 / shard_fraction).
        eval_fraction: share of shards held out for evaluation.
        synthetic_videos: how many videos `synthetic` generates (both levels).
    """
    from ytlabel.pipeline import dataset as datasets
    from ytlabel.pipeline.stages import run_folder

    manifest = datasets.ingest(
        data_source,
        dataset.path,
        shard_fraction,
        eval_fraction,
        synthetic_videos,
        publish_uri=run_folder(run_root, pipeline_run, "data"),
    )
    manifest.dump(dataset.path)
    dataset.metadata.update(
        {
            "source": data_source,
            "levels": sorted(manifest.train),
            "train_videos": manifest.videos["train"],
            "eval_videos": manifest.videos["eval"],
            "train_shards": sum(len(shards) for shards in manifest.train.values()),
        }
    )
    print(
        f"ingest: {manifest.videos['train']} training and {manifest.videos['eval']} evaluation videos, "
        f"levels {sorted(manifest.train)}"
    )
    return sorted(manifest.train)
