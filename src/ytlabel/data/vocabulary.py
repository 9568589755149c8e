"""The 3,862-class YT8M v2 vocabulary: label id -> name, and -> genre (Vertical1..3).

Rows are keyed on the `Index` column, never on row order: other copies of the file are sorted by
TrainVideoCount. The shipped copy is `assets/vocabulary.csv` (CC BY 4.0, Google; see
assets/ATTRIBUTION.md).
"""

import csv
import dataclasses
import functools
import importlib.resources
import os

import numpy as np

from ytlabel.data import schema
from ytlabel.errors import ConfigError, DataError

UNKNOWN_GENRE = "(Unknown)"
_COLUMNS = ("Index", "TrainVideoCount", "Name", "Vertical1", "Vertical2", "Vertical3")


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """Class names, genres and training frequencies, each indexed by label id.

    Attributes:
        names: class name per label id ("" where the vocabulary has none).
        verticals: (Vertical1, Vertical2, Vertical3) per label id, "" where empty.
        train_counts: int64 (3862,) videos per class in the official train split.
        genres: the sorted distinct Vertical1 values; the genre ids below index into it.
        genre_ids: int32 (3862,) genre id (into `genres`) of each class's Vertical1.
    """

    names: tuple[str, ...]
    verticals: tuple[tuple[str, str, str], ...]
    train_counts: np.ndarray
    genres: tuple[str, ...]
    genre_ids: np.ndarray

    def name(self, label: int) -> str:
        return self.names[label]

    @functools.cached_property
    def genre_groups(self) -> tuple[np.ndarray, np.ndarray]:
        """(order, starts): label ids sorted by genre (stable), and where each genre's run begins in it."""
        order = np.argsort(self.genre_ids, kind="stable")
        return order, np.searchsorted(self.genre_ids[order], np.arange(len(self.genres)))

    def genre(self, label: int) -> str:
        """The class's Vertical1, the genre used for genre metrics and outputs."""
        return self.verticals[label][0]

    def vertical(self, label: int, level: int) -> str:
        """Vertical1, 2 or 3 of a class ("" where the vocabulary leaves it empty)."""
        if level not in (1, 2, 3):
            raise ConfigError(f"vertical level must be 1, 2 or 3, got {level}")
        return self.verticals[label][level - 1]


def load_vocabulary(path: str | os.PathLike | None = None) -> Vocabulary:
    """Reads a vocabulary.csv; the shipped copy when `path` is None.

    Raises:
        DataError: missing columns, or Index values that are not exactly 0..3861.
    """
    if path is None:
        return _shipped()
    return _read(os.fspath(path))


@functools.cache
def _shipped() -> Vocabulary:
    resource = importlib.resources.files("ytlabel.data") / "assets" / "vocabulary.csv"
    with importlib.resources.as_file(resource) as path:
        return _read(str(path))


def _read(path: str) -> Vocabulary:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = csv.DictReader(handle)
        missing = [column for column in _COLUMNS if column not in (rows.fieldnames or ())]
        if missing:
            raise DataError(f"vocabulary lacks columns {missing}", source=path)
        by_index: dict[int, dict[str, str]] = {}
        for line, row in enumerate(rows, start=2):
            try:
                index = int(row["Index"])
            except ValueError:
                raise DataError(f"line {line}: Index {row['Index']!r} is not an integer", source=path) from None
            if index in by_index:
                raise DataError(f"line {line}: Index {index} appears twice", source=path)
            by_index[index] = row
    if sorted(by_index) != list(range(schema.NUM_CLASSES)):
        raise DataError(
            f"Index values must be exactly 0..{schema.NUM_CLASSES - 1}, got {len(by_index)} rows", source=path
        )
    ordered = [by_index[i] for i in range(schema.NUM_CLASSES)]
    verticals = tuple((row["Vertical1"].strip(), row["Vertical2"].strip(), row["Vertical3"].strip()) for row in ordered)
    genres = tuple(sorted({vertical[0] or UNKNOWN_GENRE for vertical in verticals}))
    genre_of = {genre: i for i, genre in enumerate(genres)}
    return Vocabulary(
        names=tuple(row["Name"].strip() for row in ordered),
        verticals=verticals,
        train_counts=np.array([int(row["TrainVideoCount"]) for row in ordered], dtype=np.int64),
        genres=genres,
        genre_ids=np.array([genre_of[vertical[0] or UNKNOWN_GENRE] for vertical in verticals], dtype=np.int32),
    )
