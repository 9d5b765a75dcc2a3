import pytest

from nbutils.training.metrics import accuracy, exact_match_score, f1_score, normalize_answer, squad_scores


def test_normalize_answer_strips_case_punctuation_articles():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert normalize_answer("an apple, a pear") == "apple pear"


def test_exact_match():
    assert exact_match_score("the Denver Broncos", "Denver Broncos") == 1.0
    assert exact_match_score("Broncos", "Denver Broncos") == 0.0


def test_f1_hand_computed():
    # pred tokens {denver, broncos, won}, gold {denver, broncos}: P=2/3, R=1, F1=0.8
    assert f1_score("Denver Broncos won", "Denver Broncos") == pytest.approx(0.8)
    # one of three gold tokens: P=1, R=1/3, F1=0.5
    assert f1_score("Broncos", "the Denver Broncos team") == pytest.approx(0.5)
    assert f1_score("Carolina", "Denver Broncos") == 0.0


def test_squad_scores_best_over_golds():
    preds = {"q1": "Denver Broncos", "q2": "in 1990", "q3": "wrong"}
    golds = {"q1": ["Denver Broncos", "Broncos"], "q2": ["1990", "the year 1990"], "q3": ["right"]}
    s = squad_scores(preds, golds)
    # EM: q1 yes; q2 'in 1990' vs '1990' no; q3 no -> 1/3
    assert s["exact_match"] == pytest.approx(100 / 3)
    # F1: q1 1.0; q2 best is vs '1990': P=1/2,R=1 -> 2/3; vs 'year 1990': P=1/2,R=1/2 -> 1/2; q3 0
    assert s["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)


def test_accuracy_rejects_mismatch():
    assert accuracy([1, 0, 1, 1], [1, 1, 1, 1]) == 75.0
    with pytest.raises(ValueError):
        accuracy([1, 0], [1])
