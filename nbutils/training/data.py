"""Tasks and data: load a classification or extractive-QA dataset from a short spec.

Specs (the notebooks' ``data`` parameter):

* ``"embedded"`` (default): the project's own sentiment set shipped in ``nbutils/training/data``
  (2,600 composed sentences, balanced, fixed 1,600/1,000 split, with negation, contrast, graded and mixed
  opinions, implicit and sarcastic ones and words seen only in validation; a ``kind`` column names the
  phenomenon; see ``tools/make_embedded_dataset.py``).
* a local folder with ``train`` and ``validation`` (or ``dev``) files in TSV, CSV, JSON or JSONL,
  GLUE-style: a text column ``sentence`` (or ``text``) and an integer ``label`` column,
  e.g. ``../shared/data/sst2``.
* a SQuAD v1.1 JSON file, or a folder holding one, for extractive QA. With only a dev file (as in
  ``../shared/data/squad-v1.1``), the articles are split in two: the first half trains and
  calibrates, the second half evaluates; :attr:`TaskData.note` says so next to every figure.
* anything else is passed to :func:`datasets.load_dataset` as a dataset id (needs the Hub).

All loading goes through ``datasets.load_dataset``; nothing is downloaded for the default.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from nbutils.core.errors import NbUtilsError

if TYPE_CHECKING:
    from datasets import Dataset

Task = Literal["classification", "qa"]
EMBEDDED = "embedded"
TEXT_COLUMNS = ("sentence", "text")
_SPLIT_NAMES = {"train": ("train",), "validation": ("validation", "dev", "val", "valid")}
_EXTENSIONS = {".tsv": "csv", ".csv": "csv", ".json": "json", ".jsonl": "json"}


@dataclass
class TaskData:
    """A task's train and validation splits, with what the rest of the suite needs to know."""

    task: Task
    source: str
    train: Dataset
    validation: Dataset
    text_column: str = "sentence"
    label_names: tuple[str, ...] = ()
    note: str = ""

    @property
    def num_labels(self) -> int:
        """Number of classes (0 for QA)."""
        return len(self.label_names)

    def describe(self) -> str:
        """One line for notebook output and report captions."""
        extra = f"; {self.note}" if self.note else ""
        return (f"{self.task} data from {self.source}: {len(self.train)} train / {len(self.validation)} "
                f"validation examples{extra}")


def embedded_dir() -> Path:
    """The folder of the embedded sentiment dataset inside the installed package."""
    return Path(__file__).resolve().parent / "data" / "embedded_sentiment"


def load_task_data(spec: str = EMBEDDED, *, train_samples: int = 0, eval_samples: int = 0,
                   seed: int = 0) -> TaskData:
    """Load the dataset named by ``spec`` (see the module docstring).

    Args:
        spec: ``"embedded"``, a local folder or file, or a ``datasets`` id.
        train_samples: keep this many training examples (shuffled with ``seed``); 0 keeps all.
        eval_samples: keep this many validation examples (the first ones, in file order); 0 keeps all.
        seed: shuffle seed for the training subset.

    Raises:
        NbUtilsError: the spec names nothing loadable, or the files lack the expected columns.

    """
    if train_samples < 0 or eval_samples < 0:
        raise NbUtilsError(f"negative sample counts (train_samples={train_samples}, eval_samples={eval_samples})",
                           "use 0 for 'all' or a positive count")
    spec = (spec or EMBEDDED).strip()
    if spec == EMBEDDED:
        data = _load_folder(embedded_dir(), source="embedded sentiment (nbutils)")
    else:
        path = Path(spec).expanduser()
        if path.exists():
            squad = _find_squad_file(path)
            data = _load_squad(squad) if squad else _load_folder(path, source=str(path))
        elif _looks_like_path(spec):
            raise NbUtilsError(f"data path {spec!r} does not exist (looked in {path.resolve()})",
                               "pass an existing folder with train/validation files, a SQuAD JSON file, "
                               "or 'embedded'")
        else:
            data = _load_hub(spec)
    if train_samples and train_samples < len(data.train):
        data.train = data.train.shuffle(seed=seed).select(range(train_samples))
    if eval_samples and eval_samples < len(data.validation):
        data.validation = data.validation.select(range(eval_samples))
    return data


def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or Path(spec).suffix in _EXTENSIONS or spec.count("/") > 1


def _split_file(folder: Path, split: str) -> Path | None:
    for stem in _SPLIT_NAMES[split]:
        for ext in _EXTENSIONS:
            candidate = folder / f"{stem}{ext}"
            if candidate.is_file():
                return candidate
    return None


def _load_folder(folder: Path, *, source: str) -> TaskData:
    import datasets

    if not folder.is_dir():
        raise NbUtilsError(f"{folder} is a file, not a dataset folder",
                           "pass a folder holding train.tsv and validation.tsv (or .csv/.json/.jsonl), "
                           "or a SQuAD v1.1 JSON file")
    files = {split: _split_file(folder, split) for split in _SPLIT_NAMES}
    missing = [s for s, f in files.items() if f is None]
    if missing:
        present = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
        raise NbUtilsError(f"data folder {folder} has no {' or '.join(missing)} file (it holds: {present})",
                           "add train.tsv and validation.tsv (or dev.tsv; .csv/.json/.jsonl also work) "
                           "with a 'sentence' and an integer 'label' column")
    splits = {}
    for split, file in files.items():
        assert file is not None
        if file.stat().st_size == 0:
            raise NbUtilsError(f"the {split} file {file} is empty (0 bytes)",
                               "fill it with a header row ('sentence<TAB>label') and at least one example")
        builder = _EXTENSIONS[file.suffix]
        kwargs: dict[str, object] = {}
        if file.suffix == ".tsv":
            kwargs = {"delimiter": "\t", "quoting": 3}  # QUOTE_NONE: SST-2 sentences hold bare quotes
        try:
            splits[split] = datasets.load_dataset(builder, data_files=str(file), split="train", **kwargs)
        except Exception as exc:  # noqa: BLE001 - any parser failure is a bad file
            if "corresponds to no data" in str(exc):
                raise NbUtilsError(f"the {split} file {file} has a header but no rows",
                                   "add examples below the header (one sentence and integer label per line)") from exc
            raise NbUtilsError(f"could not read {file}: {type(exc).__name__}: {exc}",
                               "check that the file is valid TSV/CSV/JSON with a header row") from exc
    for split, ds in splits.items():
        if len(ds) == 0:
            raise NbUtilsError(f"the {split} file {files[split]} has a header but no rows",
                               "add examples below the header (one sentence and integer label per line)")
    return _classification(splits["train"], splits["validation"], source=source, files=files)


def _classification(train: Dataset, validation: Dataset, *, source: str,
                    files: dict[str, Path | None] | None = None) -> TaskData:
    renamed = {}
    for split_name, split in (("train", train), ("validation", validation)):
        where = files[split_name] if files else f"the {split_name} split"
        text_col = next((c for c in TEXT_COLUMNS if c in split.column_names), None)
        missing = []
        if text_col is None:
            missing.append("a text column ('sentence' or 'text')")
        if "label" not in split.column_names:
            missing.append("a 'label' column")
        if missing:
            raise NbUtilsError(
                f"{where} lacks {' and '.join(missing)}; its columns are {split.column_names}",
                "rename the columns to 'sentence' and 'label' (GLUE layout: sentence<TAB>label, header row first)")
        assert text_col is not None
        renamed[split_name] = split if text_col == "sentence" else split.rename_column(text_col, "sentence")
    train, validation = renamed["train"], renamed["validation"]
    for split_name, split in (("train", train), ("validation", validation)):
        where = files[split_name] if files else f"the {split_name} split"
        blank = [i for i, t in enumerate(split["sentence"]) if not isinstance(t, str) or not t.strip()]
        if blank:
            # rows as a user counts them in a TSV file: header is line 1, the first sentence line 2
            lines = ", ".join(str(i + 2) for i in blank[:5]) + (" ..." if len(blank) > 5 else "")
            raise NbUtilsError(f"{where} has {len(blank)} empty sentence(s) (line {lines})",
                               "remove those rows or give each a sentence: the tokenizer cannot encode an empty one")
    labels: dict[str, set[object]] = {}
    for split_name, split in (("train", train), ("validation", validation)):
        values = set(split["label"])
        bad = sorted({repr(v) for v in values if not isinstance(v, int) or isinstance(v, bool) or v < 0})
        if bad:
            raise NbUtilsError(f"the {split_name} 'label' column holds non-integer or negative values: "
                               f"{', '.join(bad[:5])}",
                               "store class indices 0..K-1 in 'label' (e.g. 0 = negative, 1 = positive)")
        labels[split_name] = values
    classes = sorted(labels["train"])
    if len(classes) < 2:
        raise NbUtilsError(f"the training split has only {len(classes)} class(es): {classes}",
                           "a classifier needs at least two classes in train")
    if not labels["validation"] <= labels["train"]:
        raise NbUtilsError(f"validation labels {sorted(labels['validation'] - labels['train'])} never occur in train",
                           "check that train and validation use the same label numbering")
    names = ("negative", "positive") if classes == [0, 1] else tuple(f"class_{i}" for i in range(max(classes) + 1))
    return TaskData("classification", source, train, validation, "sentence", names)


def _find_squad_file(path: Path) -> Path | None:
    candidates = [path] if path.is_file() else sorted(path.glob("*.json"))
    for candidate in candidates:
        if candidate.suffix != ".json" or candidate.stat().st_size < 20:
            continue
        with candidate.open(encoding="utf-8") as fh:
            head = fh.read(4096)
        if '"data"' in head and ('"paragraphs"' in head or '"title"' in head):
            return candidate
    return None


def _load_squad(file: Path) -> TaskData:
    """SQuAD v1.1 JSON -> flat rows; split by article (first half train, second half validation)."""
    import datasets

    try:
        articles = datasets.load_dataset("json", data_files=str(file), field="data", split="train")
    except Exception as exc:  # noqa: BLE001
        raise NbUtilsError(f"could not read SQuAD file {file}: {exc}",
                           "pass a SQuAD v1.1 JSON file (top-level 'data' list of articles)") from exc
    if "paragraphs" not in articles.column_names:
        raise NbUtilsError(f"{file} has no 'paragraphs' in its articles (columns: {articles.column_names})",
                           "pass a SQuAD v1.1 JSON file")
    rows: list[list[dict[str, object]]] = []
    for article in articles:
        flat = []
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                flat.append({"id": qa["id"], "title": article.get("title", ""), "context": para["context"],
                             "question": qa["question"],
                             "answers": {"text": [a["text"] for a in qa["answers"]],
                                         "answer_start": [int(a["answer_start"]) for a in qa["answers"]]}})
        rows.append(flat)
    if len(rows) < 2:
        raise NbUtilsError(f"{file} holds {len(rows)} article(s)", "the article split needs at least two articles")
    half = len(rows) // 2
    train = datasets.Dataset.from_list([r for art in rows[:half] for r in art])
    validation = datasets.Dataset.from_list([r for art in rows[half:] for r in art])
    note = (f"SQuAD split by article: articles 1-{half} train/calibrate, {half + 1}-{len(rows)} evaluate "
            f"(from {file.name})")
    return TaskData("qa", str(file), train, validation, "question", (), note)


def _load_hub(spec: str) -> TaskData:
    import datasets

    name, _, config = spec.partition(":")
    try:
        ds = datasets.load_dataset(name, config or None)
    except Exception as exc:  # noqa: BLE001 - offline machines fail here
        raise NbUtilsError(f"data {spec!r} is not a local path and could not be loaded as a datasets id "
                           f"({type(exc).__name__}: {str(exc)[:200]})",
                           "pass 'embedded', a local folder (e.g. ../shared/data/sst2) or a SQuAD JSON file; "
                           "hub ids need network access") from exc
    train = ds["train"]
    val_name = next((s for s in _SPLIT_NAMES["validation"] if s in ds), None)
    if val_name is None:
        raise NbUtilsError(f"dataset {spec!r} has no validation split (splits: {list(ds)})",
                           "use a dataset with a validation or dev split")
    if "context" in train.column_names and "answers" in train.column_names:
        return TaskData("qa", spec, train, ds[val_name], "question", ())
    return _classification(train, ds[val_name], source=spec)


def write_classification_folder(folder: str | Path, rows: dict[str, list[tuple[str, int]]]) -> Path:
    """Write a GLUE-style folder (``train.tsv``/``validation.tsv``): handy for tests and exercises."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for split, items in rows.items():
        lines = ["sentence\tlabel"] + [f"{s}\t{y}" for s, y in items]
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def squad_json(articles: list[dict[str, object]]) -> str:
    """Serialise SQuAD-style articles (for tests and small examples)."""
    return json.dumps({"version": "1.1", "data": articles})
