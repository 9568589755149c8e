import numpy as np
import pytest

from ytlabel.data.vocabulary import load_vocabulary
from ytlabel.models.genre import genre_scores


def test_max_and_noisy_or_per_genre():
    vocabulary = load_vocabulary()
    probabilities = np.zeros((2, 3862))
    games = vocabulary.genres.index("Games")
    game_classes = np.flatnonzero(vocabulary.genre_ids == games)[:3]
    probabilities[0, game_classes] = [0.5, 0.2, 0.1]
    probabilities[1, 0] = 1.0  # class 0 "Game" is in Games
    max_scores = genre_scores(probabilities, vocabulary)
    assert max_scores.shape == (2, 25)
    assert max_scores[0, games] == 0.5 and max_scores[0].sum() == 0.5
    noisy = genre_scores(probabilities, vocabulary, method="noisy_or")
    assert noisy[0, games] == pytest.approx(1 - 0.5 * 0.8 * 0.9)
    assert noisy[1, games] == pytest.approx(1.0) and noisy[1].sum() == pytest.approx(1.0)


def test_wrong_width_or_method_is_refused():
    with pytest.raises(ValueError, match="must be \\(batch, 3862\\), got \\(1, 7\\)"):
        genre_scores(np.zeros((1, 7)))
    with pytest.raises(ValueError, match="genre aggregation 'mean'"):
        genre_scores(np.zeros((1, 3862)), method="mean")
