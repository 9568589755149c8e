import csv
import random

import pytest

from ytlabel.data.vocabulary import load_vocabulary
from ytlabel.errors import DataError


def test_shipped_vocabulary_maps_ids_to_names_and_genres():
    vocabulary = load_vocabulary()
    assert len(vocabulary.names) == 3862
    assert (vocabulary.name(0), vocabulary.genre(0)) == ("Game", "Games")
    assert vocabulary.name(1) == "Video game"
    assert len(vocabulary.genres) == 25
    assert sum(vocabulary.genre(i) == "(Unknown)" for i in range(3862)) == 138
    assert sum(name == "" for name in vocabulary.names) == 56
    assert vocabulary.train_counts[0] == 788288
    assert vocabulary.genres[vocabulary.genre_ids[0]] == "Games"


def test_rows_are_keyed_on_index_not_order(tmp_path):
    source = load_vocabulary()
    with open(tmp_path / "shuffled.csv", "w", newline="") as handle:
        rows = list(csv.DictReader(open(_shipped_path(), newline="", encoding="utf-8")))
        random.Random(5).shuffle(rows)
        writer = csv.DictWriter(handle, fieldnames=rows[0].keys())
        writer.writeheader()
        writer.writerows(rows)
    shuffled = load_vocabulary(tmp_path / "shuffled.csv")
    assert shuffled.names == source.names and shuffled.verticals == source.verticals
    assert shuffled.vertical(2, 2) == source.vertical(2, 2)


def test_incomplete_vocabulary_is_refused(tmp_path):
    rows = list(csv.DictReader(open(_shipped_path(), newline="", encoding="utf-8")))
    with open(tmp_path / "short.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=rows[0].keys())
        writer.writeheader()
        writer.writerows(rows[:-1])
    with pytest.raises(DataError, match="exactly 0..3861, got 3861 rows"):
        load_vocabulary(tmp_path / "short.csv")


def _shipped_path():
    import importlib.resources

    return str(importlib.resources.files("ytlabel.data") / "assets" / "vocabulary.csv")
