"""Label spaces of the six game-scraping tasks: class names, text -> class, class -> random text.

Class orders (index = position):
- game-lol-gold-fraction  "XY.Zk" gold, digit Z: "0".."9", "other" (11)
- game-lol-gold-int       integer part: "0".."9" (one digit, "5.3k"), "00".."99" (two digits,
                          "05.3k" and "45.3k"), "other" (111)
- game-lol-timer-minutes  "MM:SS" minutes: "00".."60", "other" (62)
- game-apex-squad-count   squads left: "0".."20", "other" (22)
- game-sot-coin-count     coins: "1".."14", "other" (15)
- game-sot-timer          timer: "0".."25", "other" (27)
"other" is the last class: text that does not match the structure or is out of range; the
generator also files partial (cut off) text and no text under it.
"""

from __future__ import annotations

import re
from functools import cache

import numpy as np

from ..models.game import GAME_TASKS
from .types import DataError

OTHER = "other"
# Characters the generator draws: the structures' own plus some for wrong-structure text.
CHARSET = "0123456789.:k/-KM+x "

_GOLD = re.compile(r"(\d{1,2})\.(\d)k")
_TIMER = re.compile(r"(\d\d):([0-5]\d)")
_NUMBER = re.compile(r"(\d{1,2})")
_NUMBER_RANGE = {"game-apex-squad-count": (0, 20), "game-sot-coin-count": (1, 14), "game-sot-timer": (0, 25)}


def check_task(task: str) -> str:
    """Return `task` if it is one of the six game tasks, else raise DataError listing them."""
    if task not in GAME_TASKS:
        raise DataError(f"unknown game task {task!r}; valid: {', '.join(GAME_TASKS)}")
    return task


def class_names(task: str) -> list[str]:
    """The task's class names in label order, "other" last."""
    return list(_names(check_task(task)))


@cache
def _names(task: str) -> tuple[str, ...]:
    if task == "game-lol-gold-fraction":
        names = [str(d) for d in range(10)]
    elif task == "game-lol-gold-int":
        names = [str(d) for d in range(10)] + [f"{d:02d}" for d in range(100)]
    elif task == "game-lol-timer-minutes":
        names = [f"{m:02d}" for m in range(61)]
    else:
        lo, hi = _NUMBER_RANGE[task]
        names = [str(v) for v in range(lo, hi + 1)]
    names.append(OTHER)
    if len(names) != GAME_TASKS[task][1]:  # pragma: no cover - guards the table in models/game.py
        raise AssertionError(f"{task}: {len(names)} classes, zoo says {GAME_TASKS[task][1]}")
    return tuple(names)


def classify_text(task: str, text: str) -> int:
    """Class index of fully visible HUD text `text` for `task` (the "other" index when it does not fit)."""
    names = _names(check_task(task))
    other = len(names) - 1
    if task.startswith("game-lol-gold"):
        m = _GOLD.fullmatch(text)
        if not m:
            return other
        return int(m.group(2)) if task == "game-lol-gold-fraction" else names.index(m.group(1))
    if task == "game-lol-timer-minutes":
        m = _TIMER.fullmatch(text)
        return names.index(m.group(1)) if m and int(m.group(1)) <= 60 else other
    m = _NUMBER.fullmatch(text)
    if not m or (len(text) == 2 and text[0] == "0"):
        return other
    return names.index(text) if text in names else other


def text_for_class(task: str, label: int, rng: np.random.Generator) -> str:
    """A random text of class `label` (not "other") for `task`."""
    name = _names(task)[label]
    if task == "game-lol-gold-fraction":
        integer = str(rng.integers(0, 100)) if rng.random() < 0.8 else f"{rng.integers(0, 10):02d}"
        return f"{integer}.{name}k"
    if task == "game-lol-gold-int":
        return f"{name}.{rng.integers(0, 10)}k"
    if task == "game-lol-timer-minutes":
        return f"{name}:{rng.integers(0, 60):02d}"
    return name


def other_text(task: str, rng: np.random.Generator) -> str:
    """A random text that is "other" for `task`: wrong structure, or out of range."""
    digits = "".join(str(d) for d in rng.integers(0, 10, size=4))
    if task.startswith("game-lol-gold"):
        choices = [f"{digits[:3]}.{digits[3]}k", f"{digits[:2]}.{digits[2]}", f"{digits[:1]}.{digits[1:3]}k",
                   f"{digits[:2]}{digits[2]}k", f"{digits[:2]}:{digits[2:]}", f"{digits[:2]}.{digits[2]}M"]
        text = choices[rng.integers(0, len(choices))]
    elif task == "game-lol-timer-minutes":
        choices = [f"{rng.integers(61, 100)}:{digits[2]}{rng.integers(0, 10)}", f"{digits[:2]}.{digits[2:]}",
                   f"{digits[0]}:{digits[1:3]}", f"{digits[:2]}{digits[2:]}", f"{digits[:3]}:{digits[3]}"]
        text = choices[rng.integers(0, len(choices))]
    else:
        lo, hi = _NUMBER_RANGE[task]
        outside = [v for v in range(0, 100) if not lo <= v <= hi]
        choices = [str(outside[rng.integers(0, len(outside))]), f"0{digits[0]}", f"{digits[:3]}",
                   f"{digits[0]}/{digits[1]}", f"x{digits[0]}", f"+{digits[:2]}"]
        text = choices[0] if rng.random() < 0.4 else choices[rng.integers(1, len(choices))]
    if classify_text(task, text) != len(_names(task)) - 1:  # e.g. "05" is valid for two-digit ints
        return "-" + text
    return text
