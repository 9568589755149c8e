"""Evaluate a trained run over a dataset: YT8M metrics, genre metrics, loss, and for synthetic data the
generator's oracle ceiling and a breakdown by class kind (temporal / audio / rgb / both)."""

import time
from collections.abc import Callable

import numpy as np

from ytlabel import storage
from ytlabel.data import reader, sources, stream, synth
from ytlabel.data.examples import CLASSES, InputOptions
from ytlabel.data.tfrecord import read_records
from ytlabel.data.vocabulary import Vocabulary, load_vocabulary
from ytlabel.errors import DataError
from ytlabel.evaluation.metrics import TOP_K, MetricAccumulator
from ytlabel.models import spec
from ytlabel.models.genre import genre_scores


def binary_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-video loss summed over classes, from logits, in float64 (numerically stable form)."""
    z, y = logits.astype(np.float64), labels.astype(np.float64)
    return np.sum(np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z))), axis=-1)


class Evaluation:
    """Streaming class metrics, genre metrics (through the vocabulary) and loss."""

    def __init__(self, vocabulary: Vocabulary | None = None, genres: bool = True, target: str = CLASSES):
        """`target="genres"`: the model outputs genre scores directly (a genre-trained run); its metrics are
        the genre ones, over every genre (GAP@25), and there are no class metrics."""
        self.vocabulary = vocabulary or load_vocabulary()
        self.target = target
        self.classes = MetricAccumulator(TOP_K if target == CLASSES else len(self.vocabulary.genres))
        self.genres = MetricAccumulator(len(self.vocabulary.genres)) if genres and target == CLASSES else None
        self._genre_matrix = np.eye(len(self.vocabulary.genres), dtype=np.float64)[self.vocabulary.genre_ids]
        self._loss = 0.0
        self._videos = 0

    def accumulate(self, labels: np.ndarray, logits: np.ndarray | None = None, probabilities: np.ndarray | None = None):
        """Adds a batch of (batch, 3862) labels with logits (model) or probabilities (oracle)."""
        if probabilities is None:
            probabilities = spec.probabilities(logits)
            self._loss += float(binary_cross_entropy(logits, labels).sum())
        self.classes.accumulate(probabilities, labels)
        if self.genres is not None:
            genre_labels = (np.asarray(labels, np.float64) @ self._genre_matrix) > 0
            self.genres.accumulate(genre_scores(probabilities, self.vocabulary), genre_labels)
        self._videos += len(labels)

    def result(self) -> dict:
        classes = self.classes.result()
        loss = self._loss / self._videos if self._videos and self._loss else None
        if self.target != CLASSES:
            return {
                "genre_gap": classes[f"gap_at_{self.classes.k}"],
                "genre_hit_at_1": classes["hit_at_1"],
                "videos": classes["videos"],
                "loss": loss,
                "target": self.target,
            }
        result = {
            "gap_at_20": classes["gap_at_20"],
            "hit_at_1": classes["hit_at_1"],
            "perr": classes["perr"],
            "map": classes["map_at_20"],
            "videos": classes["videos"],
            "loss": loss,
        }
        if self.genres is not None:
            genres = self.genres.result()
            result.update(genre_hit_at_1=genres["hit_at_1"], genre_gap=genres[f"gap_at_{self.genres.k}"])
        return result


def evaluate_predictions(
    predict: Callable[[dict], np.ndarray],
    shards: list[str],
    options: InputOptions,
    batch_size: int,
    evaluation: Evaluation | None = None,
) -> Evaluation:
    """Feeds every video of `shards` once (in shard order) through `predict` (numpy batch -> logits)."""
    evaluation = evaluation or Evaluation()
    plan = stream.StreamPlan(tuple(shards), tuple([0] * len(shards)), options, batch_size, shuffle_buffer=0)
    pending = []
    for record in stream.reader_records(plan, reader=0, epoch=0):
        pending.append(record)
        if len(pending) == batch_size:
            _score(predict, stream.batch_of(pending, options), evaluation)
            pending = []
    if pending:
        _score(predict, stream.batch_of(pending, options), evaluation)
    return evaluation


def _score(predict, batch: dict, evaluation: Evaluation) -> None:
    labels = batch.pop("labels")
    batch.pop("id")
    evaluation.accumulate(labels, logits=predict(batch))


def evaluate_run(run_dir: str, data: str | list[str], batch_size: int = 64) -> dict:
    """Metrics of the model in `run_dir` (either framework) on `data`; see `ytlabel evaluate`."""
    from ytlabel.models.predictor import load_predictor

    predictor = load_predictor(run_dir)
    shards = sources.resolve_shards(data)
    level = reader.detect_dataset_level(shards)
    if level != predictor.level:
        raise DataError(f"the model reads {predictor.level}-level data but {shards[0]} is {level}-level")
    started = time.perf_counter()
    evaluation = evaluate_predictions(
        predictor.predict, shards, predictor.options, batch_size, Evaluation(target=predictor.options.target)
    )
    seconds = time.perf_counter() - started
    result = {
        "arch": predictor.arch,
        "framework": predictor.framework,
        **evaluation.result(),
        "videos_per_s": round(evaluation.classes.result()["videos"] / seconds, 1),
    }
    genres = evaluation.genres or evaluation.classes  # a genre-trained run's outputs are the genres
    if evaluation.genres is not None:
        result["per_class_ap"] = {
            str(c): round(float(ap), 6)
            for c, ap in enumerate(evaluation.classes.class_ap())
            if evaluation.classes.class_positives[c]
        }
    genre_ap = genres.class_ap()
    result["per_genre_ap"] = {
        name: round(float(genre_ap[g]), 6)
        for g, name in enumerate(evaluation.vocabulary.genres)
        if genres.class_positives[g]
    }
    truth = synthetic_truth(shards)
    oracles = [oracle_shard(shard) for shard in shards]
    usable = truth and all(storage.exists(oracle) for oracle in oracles)
    if usable and predictor.options.target == CLASSES:  # the oracle and the kinds are per class
        oracle = oracle_evaluation(shards, evaluation.vocabulary)
        result["oracle"] = oracle.result()
        result["by_kind"] = kind_breakdown(truth, evaluation, oracle)
    return result


def synthetic_truth(shards: list[str]) -> dict | None:
    """The generator's synth.json when `shards` come from `ytlabel data synth` (…/DIR/{video,frame}/*)."""
    truth = storage.join(storage.parent(storage.parent(shards[0])), synth.TRUTH)
    return storage.read_json(truth) if storage.exists(truth) else None


def oracle_shard(shard: str) -> str:
    """Where the generator put its own scores for the videos of `shard`: …/DIR/oracle/<the shard's name>."""
    return storage.join(storage.parent(storage.parent(shard)), "oracle", storage.basename(shard))


def oracle_evaluation(shards: list[str], vocabulary: Vocabulary) -> Evaluation:
    """The same metrics for the generator's own scores of the same videos (the attainable ceiling)."""
    evaluation = Evaluation(vocabulary)
    for shard in shards:
        oracle_path = oracle_shard(shard)
        with storage.open_read(oracle_path) as stream_:
            oracle = [synth.decode_oracle(payload) for _, payload in read_records(stream_, source=oracle_path)]
        records = list(reader.read_shard(shard))
        for start in range(0, len(records), 256):
            chunk = records[start : start + 256]
            labels = np.zeros((len(chunk), len(vocabulary.names)), np.float32)
            for row, record in enumerate(chunk):
                labels[row, record.labels] = 1.0
            if [record.id for record in chunk] != [video_id for video_id, _ in oracle[start : start + 256]]:
                raise DataError("oracle ids do not match the data shard", source=oracle_path)
            evaluation.accumulate(labels, probabilities=np.stack([scores for _, scores in oracle[start : start + 256]]))
    return evaluation


def kind_breakdown(truth: dict, model: Evaluation, oracle: Evaluation) -> dict:
    """Mean per-class AP (top-20 truncated) of the classes of each kind, model vs oracle."""
    model_ap, oracle_ap = model.classes.class_ap(), oracle.classes.class_ap()
    present = model.classes.class_positives > 0
    breakdown = {}
    for kind, classes in truth["kinds"].items():
        chosen = np.array([c for c in classes if present[c]], dtype=int)
        breakdown[kind] = {
            "classes": len(chosen),
            "map": float(model_ap[chosen].mean()) if len(chosen) else None,
            "oracle_map": float(oracle_ap[chosen].mean()) if len(chosen) else None,
        }
    return breakdown
