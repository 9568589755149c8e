"""Summaries of a dataset for `ytlabel data inspect`: counts, labels and frames per video, genres."""

import collections

import numpy as np

from ytlabel.data.reader import detect_dataset_level, read_shard
from ytlabel.data.records import FrameRecord
from ytlabel.data.tfrecord import CorruptionReport
from ytlabel.data.vocabulary import load_vocabulary


def summarize(shards: list[str], *, skip_corrupt: bool = False, top: int = 5) -> dict:
    """One pass over `shards`; memory is O(genres), not O(videos).

    Returns:
        {"videos", "level", "shards", "skipped_corrupt", "labels_per_video", "frames_per_video",
         "top_genres": [[genre, videos], ...], "problems": [...]}; frames_per_video is None for
         video-level data. A video counts once per distinct genre among its labels.
    """
    level = detect_dataset_level(shards)
    vocabulary = load_vocabulary()
    report = CorruptionReport()
    videos = label_total = 0
    frame_counts: list[int] = []  # ints only; fine at YT8M scale (a few MB per million videos)
    genres: collections.Counter = collections.Counter()
    for shard in shards:
        for record in read_shard(shard, level, skip_corrupt=skip_corrupt, report=report):
            videos += 1
            label_total += len(record.labels)
            if isinstance(record, FrameRecord):
                frame_counts.append(record.num_frames)
            for genre in {vocabulary.genre(int(label)) for label in record.labels}:
                genres[genre] += 1
    frames = None
    if frame_counts:
        counts = np.array(frame_counts)
        frames = {"mean": float(counts.mean()), "min": int(counts.min()), "max": int(counts.max())}
    return {
        "videos": videos,
        "level": level,
        "shards": len(shards),
        "skipped_corrupt": report.skipped,
        "labels_per_video": label_total / videos if videos else 0.0,
        "frames_per_video": frames,
        "top_genres": [[genre, count] for genre, count in genres.most_common(top)],
        "problems": report.problems,
    }


def format_summary(summary: dict) -> str:
    """Human-readable lines for the terminal."""
    lines = [
        f"level            {summary['level']}",
        f"shards           {summary['shards']}",
        f"videos           {summary['videos']}",
        f"labels/video     {summary['labels_per_video']:.2f}",
    ]
    frames = summary["frames_per_video"]
    if frames:
        lines.append(f"frames/video     {frames['mean']:.1f} (min {frames['min']}, max {frames['max']})")
    lines.append(f"skipped corrupt  {summary['skipped_corrupt']}")
    lines.extend(f"  skipped: {problem}" for problem in summary["problems"])
    lines.append("top genres       " + ", ".join(f"{genre} ({count})" for genre, count in summary["top_genres"]))
    return "\n".join(lines)
