"""Write nbutils/training/data/embedded_sentiment/{train,validation}.tsv: the project's own sentiment dataset.

The sentences are composed here from hand-written word and phrase lists (no corpus is copied), with a fixed
seed, so the files are reproducible. Run it only to regenerate the shipped files:

    python tools/make_embedded_dataset.py [FOLDER]   # default: the package's data folder

What makes it hard (the phenomena that make real sentiment data hard, each with a fixed labelling rule):

* ``plain``     "The film was utterly gripping." -- the adjective's polarity.
* ``negation``  "I would not call the film dull." -- negation flips the adjective.
* ``contrast``  "Although the start was clumsy, the ending was superb." -- the clause after but/although wins.
* ``intensity`` "The plot was slightly dull and the acting was truly superb." -- the strongly graded clause wins.
* ``verdict``   "The music was lovely and the pacing was sloppy; overall, skip it." -- the closing verdict wins.
* ``implicit``  "The film ran for two hours; I fell asleep halfway through." -- no evaluative word: what was done.
* ``double negation`` "I cannot say I did not enjoy the film." -- two negatives; one alone stays negative.
* ``sarcasm``   "What a dazzling way to waste two hours." -- praise words, negative meaning.

Every third adjective and verdict and every fourth negation, contrast and sarcasm template appear only in the
validation split, as unseen words and turns of phrase do in real data: the model has to carry its pre-trained
knowledge of words over to them. The validation split is
large (1,000 sentences) so that a one-point accuracy difference is about ten sentences, not one or two.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

SUBJECTS = [
    "the film", "this movie", "the sequel", "the documentary", "the new album", "the concert", "the novel",
    "this book", "the play", "the restaurant", "the hotel", "the museum tour", "the lecture", "the workshop",
    "the video game", "the phone", "the laptop", "the headphones", "the coffee shop", "the train ride",
    "the soundtrack", "the series finale", "the podcast", "the exhibition", "the festival", "the cooking class",
    "the guided hike", "the comedy special", "the musical", "the opera", "the tasting menu", "the short story",
]
PLURAL = {"the visuals", "the characters", "the lyrics"}
ASPECTS = [
    "the acting", "the plot", "the pacing", "the dialogue", "the music", "the visuals", "the characters",
    "the ending", "the opening", "the service", "the food", "the price", "the battery life", "the screen",
    "the design", "the story", "the humour", "the camera work", "the set design", "the lyrics",
]
POS_ADJ = [
    "wonderful", "delightful", "charming", "brilliant", "moving", "clever", "gripping", "elegant", "warm",
    "funny", "fresh", "superb", "touching", "inspiring", "memorable", "polished", "thoughtful", "lovely",
    "engaging", "stunning", "dazzling", "exquisite", "riveting", "heartfelt", "luminous", "witty", "captivating",
    "masterful", "sublime", "enchanting", "uplifting", "vibrant",
]
NEG_ADJ = [
    "dull", "boring", "clumsy", "lifeless", "tedious", "flat", "irritating", "stale", "lazy", "sloppy", "forced",
    "messy", "confused", "hollow", "shallow", "predictable", "bland", "awkward", "pointless", "tiresome",
    "insipid", "leaden", "grating", "plodding", "vapid", "turgid", "muddled", "derivative", "dreary", "lacklustre",
    "clunky", "joyless",
]
WEAK = ["slightly", "a little", "somewhat", "mildly", "a bit", "faintly"]
STRONG = ["utterly", "absolutely", "incredibly", "truly", "thoroughly", "remarkably"]
PLAIN_INT = ["", "", "really ", "very ", "quite ", "so "]
POS_VERDICT = [
    "I would recommend it", "it is worth seeing", "I am glad I went", "it is a win", "I would go again",
    "it earns its praise", "count me in for more", "it was time well spent",
]
NEG_VERDICT = [
    "I cannot recommend it", "skip it", "it is not worth the money", "I regret going", "it is a miss",
    "it does not earn its praise", "count me out", "it was time wasted",
]
# Implicit sentiment: what the reviewer did, no evaluative word at all.
POS_DEED = [
    "I stayed until the very end", "I already booked a second visit", "I told all my friends about it",
    "I bought the sequel the next day", "I lost track of time", "I would pay twice the price",
    "I have been humming it all week", "I went back the following weekend", "I recommended it to my mother",
]
NEG_DEED = [
    "I left at the interval", "I asked for a refund", "I fell asleep halfway through",
    "I deleted it the same evening", "I checked my phone every five minutes", "I want those two hours back",
    "I returned it the next morning", "I walked out before the end", "I gave my second ticket away",
]
FACTS = ["{s} ran for two hours", "{s} came out last month", "{s} was in my inbox on Monday",
         "{s} had a long queue", "we saw {s} on a Friday", "{s} opened in our town", "a friend lent me {s}",
         "{s} arrived on time"]
# Double negation: two negatives make a (hedged) positive; one alone stays negative.
DOUBLE = ["I cannot say I did not enjoy {s}", "it is not as if {s} was not {a}", "I would not say {s} was not {a}"]
SINGLE = ["I cannot say I enjoyed {s}", "it is not as if {s} was {a}", "I would not say {s} was {a}"]
OPEN = ["", "", "", "Honestly, ", "Frankly, ", "I have to say ", "In short, ", "To be fair, "]
NEGATION = ["{s} was not {a}", "{s} was not exactly {a}", "{s} was never {a}", "I would not call {s} {a}",
            "nobody could call {s} {a}", "{s} was far from {a}", "I did not find {s} {a}"]
CONTRAST = ["{x}, but {y}", "although {x}, {y}", "{y}, even though {x}", "{x}; still, {y}", "while {x}, {y}"]
SARCASM = ["what {an} {a} way to waste two hours", "{s} was about as {a} as a dentist appointment",
           "oh, {s} was {a}, if you enjoy checking your watch", "{s} was {a}, said no one who sat through it",
           "{an} {a} experience, if you like being bored"]


def _split(words: list[str], every: int = 3) -> tuple[list[str], list[str]]:
    """(words for training, every word): every ``every``-th word is kept for validation only."""
    return [w for i, w in enumerate(words) if i % every != every - 1], list(words)


def _adjs(label: int, vocab: dict[str, list[str]]) -> list[str]:
    return vocab["pos"] if label else vocab["neg"]


def _clause(rng: random.Random, vocab: dict[str, list[str]], label: int, grade: list[str] | None = None,
            aspect: str = "") -> str:
    grade_word = rng.choice(grade) + " " if grade else rng.choice(PLAIN_INT)
    aspect = aspect or rng.choice(ASPECTS)
    verb = "were" if aspect in PLURAL else "was"
    return f"{aspect} {verb} {grade_word}{rng.choice(_adjs(label, vocab))}"


def _two_aspects(rng: random.Random) -> list[str]:
    return rng.sample(ASPECTS, 2)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _plain(rng: random.Random, v: dict[str, list[str]], y: int) -> str:
    return f"{rng.choice(OPEN)}{rng.choice(SUBJECTS)} was {rng.choice(PLAIN_INT)}{rng.choice(_adjs(y, v))}"


def _negation(rng: random.Random, v: dict[str, list[str]], y: int) -> str:
    return rng.choice(v["negation"]).format(s=rng.choice(SUBJECTS), a=rng.choice(_adjs(1 - y, v)))


def _contrast(rng: random.Random, v: dict[str, list[str]], y: int) -> str:
    a, b = _two_aspects(rng)
    return rng.choice(v["contrast"]).format(x=_clause(rng, v, 1 - y, aspect=a), y=_clause(rng, v, y, aspect=b))


def _intensity(rng: random.Random, v: dict[str, list[str]], y: int) -> str:
    a, b = _two_aspects(rng)
    weak, strong = _clause(rng, v, 1 - y, WEAK, aspect=a), _clause(rng, v, y, STRONG, aspect=b)
    first, second = (weak, strong) if rng.random() < 0.5 else (strong, weak)
    return f"{first} and {second}"


def _verdict(rng: random.Random, v: dict[str, list[str]], y: int) -> str:
    pa, na = _two_aspects(rng)
    a, b = _clause(rng, v, 1, aspect=pa), _clause(rng, v, 0, aspect=na)
    first, second = (a, b) if rng.random() < 0.5 else (b, a)
    return f"{first} and {second}; overall, {rng.choice(v['pos_verdict'] if y else v['neg_verdict'])}"


def _implicit(rng: random.Random, v: dict[str, list[str]], y: int) -> str:
    fact = rng.choice(v["facts"]).format(s=rng.choice(SUBJECTS))
    return f"{fact}; {rng.choice(v['pos_deed'] if y else v['neg_deed'])}"


def _double(rng: random.Random, v: dict[str, list[str]], y: int) -> str:
    i = rng.randrange(len(DOUBLE))
    return (DOUBLE if y else SINGLE)[i].format(s=rng.choice(SUBJECTS), a=rng.choice(v["pos"]))


def _sarcasm(rng: random.Random, v: dict[str, list[str]], y: int) -> str:
    # only negative: sarcastic praise; the positive side of this kind is plain praise with a complaint word
    if y == 0:
        word = rng.choice(v["pos"])
        return rng.choice(v["sarcasm"]).format(s=rng.choice(SUBJECTS), a=word, an=_article(word))
    return f"{rng.choice(SUBJECTS)} was {rng.choice(v['pos'])}, and I am not one to gush"


KINDS: list[tuple[str, float, Callable[[random.Random, dict[str, list[str]], int], str]]] = [
    ("plain", 0.16, _plain), ("negation", 0.16, _negation), ("contrast", 0.16, _contrast),
    ("intensity", 0.13, _intensity), ("verdict", 0.11, _verdict), ("implicit", 0.14, _implicit),
    ("double negation", 0.07, _double), ("sarcasm", 0.07, _sarcasm),
]


def _vocab(split: str) -> dict[str, list[str]]:
    pick = 0 if split == "train" else 1
    return {"pos": _split(POS_ADJ)[pick], "neg": _split(NEG_ADJ)[pick],
            "pos_verdict": _split(POS_VERDICT)[pick], "neg_verdict": _split(NEG_VERDICT)[pick],
            "negation": _split(NEGATION, 4)[pick], "contrast": _split(CONTRAST, 4)[pick],
            "sarcasm": _split(SARCASM, 4)[pick], "pos_deed": _split(POS_DEED)[pick],
            "neg_deed": _split(NEG_DEED)[pick], "facts": _split(FACTS, 4)[pick]}


def sentences(split: str, n: int, rng: random.Random, exclude: set[str]) -> list[tuple[str, int, str]]:
    """``n`` distinct (sentence, label, kind) rows, balanced, none in ``exclude``."""
    vocab = _vocab(split)
    names, weights, makers = zip(*KINDS, strict=True)
    out: dict[str, tuple[int, str]] = {}
    while len(out) < n:
        y = len(out) % 2
        i = rng.choices(range(len(makers)), weights=weights)[0]
        text = makers[i](rng, vocab, y)
        text = text[0].upper() + text[1:] + "."
        if text not in exclude and text not in out:
            out[text] = (y, names[i])
    return [(s, y, k) for s, (y, k) in out.items()]


def main(dest: Path | None = None) -> None:
    rng = random.Random(20261206)
    validation = sentences("validation", 1000, rng, set())
    train = sentences("train", 1600, rng, {s for s, _, _ in validation})
    rng.shuffle(train)
    rng.shuffle(validation)
    dest = dest or Path(__file__).resolve().parents[1] / "nbutils" / "training" / "data" / "embedded_sentiment"
    dest.mkdir(parents=True, exist_ok=True)
    for name, part in (("train", train), ("validation", validation)):
        lines = ["sentence\tlabel\tkind"] + [f"{s}\t{y}\t{k}" for s, y, k in part]
        (dest / f"{name}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(train)} train / {len(validation)} validation sentences to {dest}")


if __name__ == "__main__":
    import sys

    main(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
