import pytest

from nbutils.core.errors import NbUtilsError
from nbutils.training.data import load_task_data, squad_json, write_classification_folder


def test_embedded_dataset_is_balanced_with_fixed_split():
    d = load_task_data("embedded")
    assert d.task == "classification"
    assert (len(d.train), len(d.validation)) == (1600, 1000)
    labels = list(d.train["label"]) + list(d.validation["label"])
    assert labels.count(0) == labels.count(1) == 1300
    assert not set(d.train["sentence"]) & set(d.validation["sentence"])
    # every phenomenon is in both splits, and some validation words never occur in training
    kinds = {"plain", "negation", "contrast", "intensity", "verdict", "implicit", "double negation", "sarcasm"}
    assert set(d.train["kind"]) == set(d.validation["kind"]) == kinds
    train_words = {w.strip(".,;").lower() for s in d.train["sentence"] for w in s.split()}
    unseen = {w.strip(".,;").lower() for s in d.validation["sentence"] for w in s.split()} - train_words
    assert {"charming", "clumsy"} <= unseen and len(unseen) >= 20


def test_embedded_dataset_is_what_its_generator_writes(tmp_path):
    """The shipped files are reproducible: tools/make_embedded_dataset.py writes them byte for byte."""
    import importlib.util
    from pathlib import Path

    from nbutils.training.data import embedded_dir

    tool = Path(__file__).resolve().parents[2] / "tools" / "make_embedded_dataset.py"
    spec = importlib.util.spec_from_file_location("make_embedded_dataset", tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    for name in ("train.tsv", "validation.tsv"):
        assert (tmp_path / name).read_bytes() == (embedded_dir() / name).read_bytes(), name


def test_subsampling_is_seeded():
    a = load_task_data("embedded", train_samples=50, seed=1)
    b = load_task_data("embedded", train_samples=50, seed=1)
    assert len(a.train) == 50 and list(a.train["sentence"]) == list(b.train["sentence"])


def test_local_folder_and_text_column_alias(tmp_path):
    rows = {"train": [("good", 1), ("bad", 0)] * 3, "validation": [("fine", 1), ("awful", 0)]}
    folder = write_classification_folder(tmp_path / "d", rows)
    (folder / "train.tsv").write_text((folder / "train.tsv").read_text().replace("sentence", "text", 1))
    d = load_task_data(str(folder))
    assert d.num_labels == 2 and "sentence" in d.train.column_names


def test_missing_label_column_is_named(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "train.tsv").write_text("sentence\ttarget\nok\t1\nbad\t0\n")
    (folder / "validation.tsv").write_text("sentence\ttarget\nok\t1\n")
    with pytest.raises(NbUtilsError, match="lacks a 'label' column.*'target'"):
        load_task_data(str(folder))


def test_text_labels_are_rejected(tmp_path):
    rows = {"train": [("good", "pos"), ("bad", "neg")], "validation": [("ok", "pos")]}
    folder = write_classification_folder(tmp_path / "d", rows)
    with pytest.raises(NbUtilsError, match="non-integer"):
        load_task_data(str(folder))


def test_missing_validation_file(tmp_path):
    folder = write_classification_folder(tmp_path / "d", {"train": [("good", 1), ("bad", 0)]})
    with pytest.raises(NbUtilsError, match="no validation file"):
        load_task_data(str(folder))


def test_nonexistent_path():
    with pytest.raises(NbUtilsError, match="does not exist"):
        load_task_data("./no/such/folder")


def test_squad_json_split_by_article(tmp_path):
    arts = [{"title": f"A{i}", "paragraphs": [{"context": f"Paris is in France {i}.",
                                               "qas": [{"id": f"q{i}", "question": "Where is Paris?",
                                                        "answers": [{"text": "France", "answer_start": 12}]}]}]}
            for i in range(4)]
    f = tmp_path / "squad.json"
    f.write_text(squad_json(arts))
    d = load_task_data(str(f))
    assert d.task == "qa" and len(d.train) == 2 and len(d.validation) == 2
    assert "articles 1-2" in d.note


def test_real_sst2(sst2_dir):
    d = load_task_data(str(sst2_dir))
    assert (len(d.train), len(d.validation)) == (67349, 872)


def test_real_squad(squad_file):
    d = load_task_data(str(squad_file))
    assert len(d.train) + len(d.validation) == 10570
