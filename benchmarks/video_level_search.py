"""Which changes make a video-level MLP stronger on real YT8M data: one change at a time, PyTorch, in memory.

An exploration harness, not the product path: the 164-shard training split and the 16 evaluation shards
are decoded once into arrays (cached as .npz under --cache), and each variant trains a small PyTorch MLP
on them directly, so one variant takes about a minute on 2 cores instead of the CLI's several. What helps
here is then built into the spec in both frameworks and measured again through `ytlabel train` /
`evaluate` (benchmarks/real_video_level.py); only those figures count as results.

The baseline is the shipped fc preset, built from the product's `dense` (Glorot init) and `batch_norm`
(eps 1e-3, momentum 0.1) with its output bias: L2-normalised [rgb, audio], batch norm on the input, one
2048-wide hidden layer with batch norm and ReLU, dropout 0.5, a linear output, Adam 1e-3 with a cosine
decay over 8 epochs, batch 256. Each variant names the settings it changes. (Without the output bias the
baseline scored 0.704 here against the product's 0.725: the init matters at this budget.)

Prints one JSON line per variant to stderr and a JSON list as its last stdout line.

Usage: python benchmarks/video_level_search.py --data DIR [--variants base,wide,...] [--cache DIR] [--seed 0]
"""

import argparse
import glob
import json
import math
import os
import sys
import time

import numpy as np
import torch
from common import shard_slice
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
from ytlabel.data import reader
from ytlabel.data.examples import l2_normalize_pair
from ytlabel.data.vocabulary import load_vocabulary
from ytlabel.evaluation.metrics import MetricAccumulator
from ytlabel.models.genre import genre_scores
from ytlabel.models.spec import output_bias
from ytlabel.models.torch.layers import batch_norm, dense

CLASSES = 3862
BASE = {
    "hidden": 2048,
    "layers": 1,
    "dropout": 0.5,
    "input_dropout": 0.0,
    "epochs": 8,
    "lr": 1e-3,
    "batch": 256,
    "gating": False,
    "experts": 0,
    "label_smoothing": 0.0,
    "mixup": 0.0,
    "ema": 0.0,
    "weight_decay": 0.0,
    "target": "classes",
    "input_gating": False,
    "distill": 0.0,
    "teachers": 2,
    "teacher_folds": 0,
    "bottleneck": 0,
}
VARIANTS = {
    "base": {},
    "epochs16": {"epochs": 16},
    "wide4096": {"hidden": 4096},
    "wide4096_dropout07": {"hidden": 4096, "dropout": 0.7},
    "batch128": {"batch": 128},
    "epochs12": {"epochs": 12},
    "input_dropout04": {"input_dropout": 0.4},
    "deep2": {"layers": 2},
    "gating": {"gating": True},
    "moe2": {"experts": 2},
    "moe4": {"experts": 4},
    "smooth": {"label_smoothing": 0.1},
    "mixup": {"mixup": 0.2},
    "ema": {"ema": 0.995},
    "input_dropout": {"input_dropout": 0.2},
    "weight_decay": {"weight_decay": 1e-5},
    "lr2e3": {"lr": 2e-3},
    "lr5e4": {"lr": 5e-4},
    "dropout06": {"dropout": 0.6},
    "input_gating": {"input_gating": True},
    # A linear low-rank output layer (hidden -> k -> classes): rare classes share k directions.
    "bottleneck512": {"bottleneck": 512},
    # Distillation: the targets become (1 - a) * labels + a * the mean probabilities that `teachers` models
    # (the same settings without distillation, seeds seed+1...) give the training videos after training.
    "distill": {"distill": 0.5},
    # Out-of-fold teachers: the training videos in `teacher_folds` folds, each fold's soft targets from a
    # teacher trained on the other folds, so no video is softened by a model that has seen it.
    "distill_oof": {"distill": 0.5, "teacher_folds": 4},
    # The genre question: the same MLP trained on the 25 Vertical1 genres (multi-hot) instead of the 3,862
    # classes. Every classes variant also reports genres derived from its class scores (max per genre).
    "genre_target": {"target": "genres"},
}
VOCABULARY = load_vocabulary()
GENRES = len(VOCABULARY.genres)


def load_split(files: list[str], cache: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """Features (videos, 1152) L2-normalised as the preset does, and each video's label ids."""
    if os.path.exists(cache):
        stored = np.load(cache, allow_pickle=False)
        offsets = stored["offsets"]
        return stored["features"], np.split(stored["labels"], offsets[1:-1])
    features, labels = [], []
    for path in files:
        for record in reader.read_shard(path):
            rgb, audio = l2_normalize_pair(record.rgb[None], record.audio[None])
            features.append(np.concatenate([rgb[0], audio[0]]))
            labels.append(record.labels.astype(np.int64))
    features = np.stack(features).astype(np.float32)
    offsets = np.cumsum([0] + [len(label) for label in labels])
    np.savez(cache, features=features, labels=np.concatenate(labels), offsets=offsets)
    return features, labels


def multi_hot(labels: list[np.ndarray], index: np.ndarray, target: str = "classes") -> torch.Tensor:
    """(videos, 3862) class targets, or (videos, 25) genre targets (a genre is present when any of its
    classes is)."""
    out = torch.zeros(len(index), CLASSES if target == "classes" else GENRES)
    for row, video in enumerate(index):
        out[row, labels[video] if target == "classes" else VOCABULARY.genre_ids[labels[video]]] = 1.0
    return out


class Gate(nn.Module):
    """Context gating (Miech et al. 2017): x * sigmoid(batchnorm(W x))."""

    def __init__(self, width: int):
        super().__init__()
        self.linear, self.norm = dense(width, width), batch_norm(width)

    def forward(self, x):
        return x * torch.sigmoid(self.norm(self.linear(x)))


class Net(nn.Module):
    def __init__(self, s: dict):
        super().__init__()
        outputs = CLASSES if s["target"] == "classes" else GENRES
        layers: list[nn.Module] = [batch_norm(1152), nn.Dropout(s["input_dropout"])]
        width = 1152
        if s["input_gating"]:
            layers.append(Gate(width))
        for _ in range(s["layers"]):
            layers += [dense(width, s["hidden"]), batch_norm(s["hidden"]), nn.ReLU()]
            width = s["hidden"]
        if s["gating"]:
            layers.append(Gate(width))
        layers.append(nn.Dropout(s["dropout"]))
        self.body = nn.Sequential(*layers)
        self.experts = s["experts"]
        if self.experts:  # per class: softmax gate over experts (+ a null expert), sigmoid experts
            self.gate = dense(width, CLASSES * (self.experts + 1))
            self.expert = dense(width, CLASSES * self.experts, output_bias(CLASSES))
        elif s["bottleneck"]:
            self.out = nn.Sequential(
                dense(width, s["bottleneck"]), dense(s["bottleneck"], outputs, output_bias(outputs))
            )
        else:
            self.out = dense(width, outputs, output_bias(outputs))

    def forward(self, x):
        """Logits for the linear head; probabilities for MoE (it mixes probabilities, not logits)."""
        hidden = self.body(x)
        if not self.experts:
            return self.out(hidden)
        gates = torch.softmax(self.gate(hidden).view(-1, CLASSES, self.experts + 1), dim=-1)
        experts = torch.sigmoid(self.expert(hidden).view(-1, CLASSES, self.experts))
        return (gates[..., : self.experts] * experts).sum(-1)


def _loss(output: torch.Tensor, target: torch.Tensor, experts: int) -> torch.Tensor:
    if experts:
        return nn.functional.binary_cross_entropy(output.clamp(1e-7, 1 - 1e-7), target, reduction="none")
    return nn.functional.binary_cross_entropy_with_logits(output, target, reduction="none")


def predict(model: nn.Module, features: np.ndarray, experts: int) -> np.ndarray:
    """Probabilities for every row of `features`, in eval mode."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(features), 1024):
            output = model(torch.from_numpy(features[start : start + 1024]))
            out.append((output if experts else torch.sigmoid(output)).numpy())
    return np.concatenate(out)


def out_of_fold(s: dict, train, seed: int) -> np.ndarray:
    """Each training video's probabilities from a teacher that did not train on it (`teacher_folds` folds)."""
    folds = np.random.default_rng(seed + 100).permutation(len(train[0])) % s["teacher_folds"]
    soft = np.zeros((len(train[0]), CLASSES), dtype=np.float32)
    for fold in range(s["teacher_folds"]):
        kept = np.flatnonzero(folds != fold)
        teacher = fit({**s, "distill": 0.0}, (train[0][kept], [train[1][i] for i in kept]), seed + 1 + fold)
        held = np.flatnonzero(folds == fold)
        soft[held] = predict(teacher, train[0][held], s["experts"])
    return soft


def gap_of(scores: np.ndarray, labels: list[np.ndarray]) -> float:
    metrics = MetricAccumulator()
    metrics.accumulate(scores, multi_hot(labels, np.arange(len(scores))).numpy())
    return metrics.result()["gap_at_20"]


def run_variant(name: str, train, evaluation, seed: int) -> dict:
    s = {**BASE, **VARIANTS[name]}
    started = time.perf_counter()
    soft, row = None, {"variant": name, "changes": VARIANTS[name], "seed": seed}
    if s["distill"] and s["teacher_folds"]:
        soft = out_of_fold(s, train, seed)
    elif s["distill"]:
        teachers = [fit({**s, "distill": 0.0}, train, seed + 1 + t) for t in range(s["teachers"])]
        soft = np.mean([predict(t, train[0], s["experts"]) for t in teachers], axis=0, dtype=np.float32)
        teacher_scores = np.mean([predict(t, evaluation[0], s["experts"]) for t in teachers], axis=0)
        row["teachers_gap_at_20"] = round(gap_of(teacher_scores, evaluation[1]), 4)
    scorer = fit(s, train, seed, soft)
    metrics, genres = MetricAccumulator(), MetricAccumulator(GENRES)
    scores_all = predict(scorer, evaluation[0], s["experts"])
    for start in range(0, len(evaluation[0]), 1024):
        index = np.arange(start, min(start + 1024, len(evaluation[0])))
        scores = scores_all[index]
        genre_truth = multi_hot(evaluation[1], index, "genres").numpy()
        if s["target"] == "genres":
            genres.accumulate(scores, genre_truth)
            continue
        metrics.accumulate(scores, multi_hot(evaluation[1], index).numpy())
        genres.accumulate(genre_scores(scores, VOCABULARY), genre_truth)
    if s["target"] == "classes":
        result = metrics.result()
        row.update(gap_at_20=round(result["gap_at_20"], 4), hit_at_1=round(result["hit_at_1"], 4))
    result = genres.result()
    row.update(
        genre_gap=round(result[f"gap_at_{GENRES}"], 4),
        genre_hit_at_1=round(result["hit_at_1"], 4),
        genres_from="trained on genres" if s["target"] == "genres" else "derived from class scores (max)",
    )
    return {**row, "train_s": round(time.perf_counter() - started, 1)}


def fit(s: dict, train, seed: int, soft: np.ndarray | None = None) -> nn.Module:
    """One model trained with settings `s`; `soft` (videos, classes) is mixed into the targets if given."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    features, labels = torch.from_numpy(train[0]), train[1]
    model = Net(s)
    averaged = (
        torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(s["ema"]))
        if s["ema"]
        else None
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=s["lr"], weight_decay=s["weight_decay"])
    steps_per_epoch = math.ceil(len(features) / s["batch"])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=s["epochs"] * steps_per_epoch)
    for _ in range(s["epochs"]):
        model.train()
        order = rng.permutation(len(features))
        for start in range(0, len(order), s["batch"]):
            index = order[start : start + s["batch"]]
            x, y = features[index], multi_hot(labels, index, s["target"])
            if soft is not None:
                y = (1 - s["distill"]) * y + s["distill"] * torch.from_numpy(soft[index])
            if s["mixup"]:
                mix = float(rng.beta(s["mixup"], s["mixup"]))
                partner = torch.from_numpy(rng.permutation(len(index)))
                x, y = mix * x + (1 - mix) * x[partner], mix * y + (1 - mix) * y[partner]
            if s["label_smoothing"]:
                y = y * (1 - s["label_smoothing"]) + s["label_smoothing"] / 2
            loss = _loss(model(x), y, s["experts"]).sum(1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            if averaged is not None:
                averaged.update_parameters(model)
    if averaged is not None:  # batch-norm statistics of the averaged weights, from one pass over the data
        torch.optim.swa_utils.update_bn(((features[i : i + 1024],) for i in range(0, len(features), 1024)), averaged)
    return averaged or model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--train-shards", default="0:64,80:180")
    parser.add_argument("--eval-shards", default="64:80")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument(
        "--combine",
        action="append",
        default=[],
        metavar="A,B,...",
        help="also run one variant with these variants' changes together (repeatable)",
    )
    parser.add_argument("--cache", default="/tmp/ytlabel-search-cache")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    shards = sorted(glob.glob(os.path.join(args.data, "*.tfrecord")))
    os.makedirs(args.cache, exist_ok=True)
    train = load_split(
        [s for part in args.train_shards.split(",") for s in shards[shard_slice(part)]],
        os.path.join(args.cache, f"train-{args.train_shards.replace(':', '_').replace(',', '-')}.npz"),
    )
    evaluation = load_split(
        shards[shard_slice(args.eval_shards)],
        os.path.join(args.cache, f"eval-{args.eval_shards.replace(':', '_')}.npz"),
    )
    names = [name for name in args.variants.split(",") if name]
    for combine in args.combine:
        VARIANTS["+".join(combine.split(","))] = {k: v for n in combine.split(",") for k, v in VARIANTS[n].items()}
        names.append("+".join(combine.split(",")))
    rows = []
    for name in names:
        rows.append(run_variant(name, train, evaluation, args.seed))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(json.dumps({"train_videos": len(train[0]), "eval_videos": len(evaluation[0]), "rows": rows}))


if __name__ == "__main__":
    main()
