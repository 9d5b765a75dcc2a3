"""Write nbutils/training/data/embedded_sentiment/{train,validation}.tsv: the project's own small dataset.

The sentences are composed here from hand-written phrase lists (no corpus is copied), with a
fixed seed, so the file is reproducible. Run it only to regenerate the shipped files:

    python tools/make_embedded_dataset.py
"""

from __future__ import annotations

import random
from pathlib import Path

SUBJECTS = [
    "the film", "this movie", "the sequel", "the documentary", "the new album", "the concert",
    "the novel", "this book", "the play", "the restaurant", "the hotel", "the museum tour",
    "the lecture", "the workshop", "the video game", "the phone", "the laptop", "the headphones",
    "the coffee shop", "the train ride", "the opening scene", "the soundtrack", "the ending",
    "the main actor", "the lead singer", "the service", "the tutorial", "the app", "the podcast",
    "the exhibition", "the festival", "the cooking class", "the guided hike", "the comedy special",
]
POS_CORE = [
    "was wonderful", "was a real delight", "felt warm and honest", "was beautifully made",
    "kept me smiling", "was clever and moving", "exceeded every expectation", "was a joy from start to finish",
    "was thoughtful and funny", "left me inspired", "was worth every minute", "was charming",
    "felt fresh and alive", "was superbly crafted", "was genuinely touching", "made my whole week",
    "was gripping", "was elegant and smart", "had real heart", "was a pleasant surprise",
]
NEG_CORE = [
    "was dull", "was a real letdown", "felt cold and hollow", "was poorly made",
    "bored me to tears", "was clumsy and lifeless", "fell short of every expectation", "was a chore from start to finish",
    "was tedious and flat", "left me annoyed", "was a waste of time", "was irritating",
    "felt stale and lazy", "was sloppily put together", "was painfully forced", "ruined my whole week",
    "dragged on forever", "was messy and confused", "had no heart at all", "was an unpleasant surprise",
]
POS_TAIL = [
    "", "", "", " and I would gladly go back", ", and the details were lovely", " and I recommend it to anyone",
    ", even better than the reviews said", " and everyone around me agreed", ", a small treasure", " and I want more",
]
NEG_TAIL = [
    "", "", "", " and I will not go back", ", and the details were careless", " and I would warn anyone away",
    ", even worse than the reviews said", " and everyone around me agreed", ", a total mess", " and I want my money back",
]
POS_OPEN = ["", "", "Honestly, ", "To my surprise, ", "I have to say ", "Frankly, ", "Without a doubt, "]
NEG_OPEN = ["", "", "Honestly, ", "Sadly, ", "I have to say ", "Frankly, ", "Unfortunately, "]
# Contrast sentences: the verdict is in the second clause, so a bag of words is not enough.
POS_CONTRAST = ["the start was slow, but {s} turned out to be wonderful", "I expected little, yet {s} won me over",
                "despite a shaky first act, {s} was a triumph"]
NEG_CONTRAST = ["the start was promising, but {s} quickly fell apart", "I expected a lot, yet {s} let me down",
                "despite a great trailer, {s} was a disaster"]


def _sentences(label: int, rng: random.Random, n: int) -> list[str]:
    core, tail, opener, contrast = (
        (POS_CORE, POS_TAIL, POS_OPEN, POS_CONTRAST) if label else (NEG_CORE, NEG_TAIL, NEG_OPEN, NEG_CONTRAST)
    )
    out: set[str] = set()
    while len(out) < n:
        subject = rng.choice(SUBJECTS)
        if rng.random() < 0.15:
            text = rng.choice(contrast).format(s=subject)
        else:
            text = f"{rng.choice(opener)}{subject} {rng.choice(core)}{rng.choice(tail)}"
        text = text[0].upper() + text[1:] + "."
        out.add(text)
    return sorted(out)


def main() -> None:
    rng = random.Random(20261121)
    rows = [(s, 1) for s in _sentences(1, rng, 400)] + [(s, 0) for s in _sentences(0, rng, 400)]
    rng.shuffle(rows)
    validation = rows[:160]
    train = rows[160:]
    dest = Path(__file__).resolve().parents[1] / "nbutils" / "training" / "data" / "embedded_sentiment"
    dest.mkdir(parents=True, exist_ok=True)
    for name, part in (("train", train), ("validation", validation)):
        lines = ["sentence\tlabel"] + [f"{s}\t{y}" for s, y in part]
        (dest / f"{name}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(train)} train / {len(validation)} validation sentences to {dest}")


if __name__ == "__main__":
    main()
