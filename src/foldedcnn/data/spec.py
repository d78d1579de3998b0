"""DataSpec strings: one string names a data set and its options, `load_data` turns it into tensors.

    game-lol-gold-int                      generated; ?n_train=20000&n_val=2000&n_test=4000&holdout_fonts=0
    vtest | vtest:DIR                      person-in-region on vtest.avi: `vtest` is prepared into
                                           $FOLDEDCNN_CACHE/vtest-task on first use; vtest:DIR must already
                                           hold it (`foldedcnn data video vtest --out DIR`)
    npz:DIR                                a set saved by `foldedcnn data game|video` (store.py format)
    fashion-mnist[:DIR]                    Debian dataset-fashion-mnist; ?size=32&channels=3
    cifar10:PATH | cifar100:PATH           the python archive (folder or .tar.gz)
    folder:DIR                             DIR/{train,val,test}/CLASS/IMAGE.png; ?classes=empty,car: the class
                                           order (default sorted; of two classes the second is the positive);
                                           ?size=N or ?height=H&width=W: resize every image to it
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

from ..device import cache_dir
from ..models.game import GAME_TASKS
from .noscope import CONVERSION, check_split
from .types import DataError, LabelledImages

GAME_DEFAULTS = {"n_train": 20_000, "n_val": 2_000, "n_test": 4_000, "holdout_fonts": 0}
_OPTIONS = {"game": set(GAME_DEFAULTS), "fashion-mnist": {"size", "channels"},
            "folder": {"classes", "size", "height", "width"}}
_NEEDS_PATH = {"npz", "cifar10", "cifar100", "folder"}


@dataclass(frozen=True)
class DataSpec:
    """A parsed spec: `kind` (game, vtest, npz, fashion-mnist, cifar10, cifar100, folder), `name` (the game
    task, else the kind), `path` (None when the default location is used), integer `options` and, for a folder,
    the class order asked for (`classes`, None: sorted)."""

    kind: str
    name: str
    path: Path | None = None
    options: dict[str, int] = field(default_factory=dict)
    classes: tuple[str, ...] | None = None


def _valid() -> str:
    return ", ".join([*GAME_TASKS, "vtest[:DIR]", "npz:DIR", "fashion-mnist[:DIR]", "cifar10:PATH",
                      "cifar100:PATH", "folder:DIR"])


def parse_spec(spec: str) -> DataSpec:
    """Parse 'NAME[:PATH][?key=value&...]'; unknown names or options raise DataError listing the valid ones."""
    head, _, query = spec.partition("?")
    name, _, path = head.partition(":")
    if name.startswith("game-"):
        if name not in GAME_TASKS:
            raise DataError(f"unknown game task {name!r}; valid data specs: {_valid()}")
        kind = "game"
    elif name in ("vtest", "npz", "fashion-mnist", "cifar10", "cifar100", "folder"):
        kind = name
    else:
        raise DataError(f"unknown data spec {spec!r}; valid: {_valid()}")
    if kind == "game" and path:
        raise DataError(f"{name} is generated and takes no path")
    if kind in _NEEDS_PATH and not path:
        raise DataError(f"{name} needs a path: {name}:PATH")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True) if query else []
    except ValueError:
        raise DataError(f"bad options {query!r} in {spec!r}: write NAME?key=value&key=value") from None
    options: dict[str, int] = {}
    classes = None
    for key, value in pairs:
        if key not in _OPTIONS.get(kind, set()):
            allowed = ", ".join(sorted(_OPTIONS.get(kind, set()))) or "none"
            raise DataError(f"unknown option {key!r} for {name} (options: {allowed})")
        if key == "classes":  # the one option that is not an integer
            classes = tuple(c.strip() for c in value.split(","))
            if len(set(classes)) != len(classes) or not all(classes):
                raise DataError(f"classes={value!r} in {spec!r} must name each class once, comma-separated")
            continue
        try:
            options[key] = int(value)
        except ValueError:
            raise DataError(f"option {key} must be an integer, got {value!r}") from None
    return DataSpec(kind, name, Path(path).expanduser() if path else None, options, classes)


def is_generated(spec: str) -> bool:
    """Whether `spec` names generated data, of which load_data can draw new training images (draw > 0)."""
    return parse_spec(spec).kind == "game"


def load_data(spec: str, split: str, *, seed: int = 0, draw: int = 0) -> LabelledImages:
    """Split `split` ('train', 'val', 'test') of the data named by `spec`: uint8 images (N, 3, H, W), labels (N,).

    Deterministic given (spec, split, seed, draw); `seed` only matters for generated (game) data. `draw` d > 0
    (generated data only) gives N new images of the split, different for every d: fresh training images
    for epoch d; draw 0 is the split itself.
    """
    s = parse_spec(spec)
    check_split(split)
    if draw and s.kind != "game":
        raise DataError(f"{spec} is read from disk, so it has no fresh draws; fresh data every epoch needs a "
                        f"generated data spec ({', '.join(GAME_TASKS)})")
    if s.kind == "game":
        from .game import generate_game

        opts = {**GAME_DEFAULTS, **s.options}
        return generate_game(s.name, split, opts[f"n_{split}"], seed, holdout_fonts=opts["holdout_fonts"],
                             draw=draw)
    if s.kind in ("vtest", "npz"):
        from .store import load_split

        task_dir = s.path
        if s.kind == "vtest" and task_dir is None:
            task_dir = cache_dir() / "vtest-task"
            if not _made_as_now(task_dir):
                from .vtest import prepare_vtest

                prepare_vtest(task_dir)
        elif not (task_dir / "meta.json").is_file():  # a named folder is read, never created (a typo stays a typo)
            what = "does not exist" if not task_dir.exists() else "holds no prepared data set (no meta.json)"
            make = "foldedcnn data video vtest" if s.kind == "vtest" else "foldedcnn data game|video"
            raise DataError(f"{spec}: {task_dir} {what}; check the path, or make it with `{make} --out {task_dir}`")
        return load_split(task_dir, split)
    if s.kind == "fashion-mnist":
        from .idx import FASHION_MNIST_DIR, load_fashion_mnist

        return load_fashion_mnist(split, root=s.path or FASHION_MNIST_DIR, size=s.options.get("size"),
                                  channels=s.options.get("channels", 3))
    if s.kind in ("cifar10", "cifar100"):
        from .cifar import load_cifar

        return load_cifar(s.path, split, classes=int(s.kind[5:]))
    from .folder import load_split_folder

    return load_split_folder(s.path, split, s.classes, _folder_size(spec, s.options))


def _folder_size(spec: str, options: dict[str, int]) -> tuple[int, int] | None:
    """(H, W) a folder's images are resized to: ?size=N, or ?height=H&width=W (both), else None."""
    if "size" in options and options.keys() & {"height", "width"}:
        raise DataError(f"{spec}: give ?size=N or ?height=H&width=W, not both")
    if options.keys() & {"height", "width"} and not options.keys() >= {"height", "width"}:
        raise DataError(f"{spec}: ?height= and ?width= go together (or ?size=N for N x N)")
    size = (options["size"],) * 2 if "size" in options else (options.get("height"), options.get("width"))
    if size == (None, None):
        return None
    if min(size) < 1:
        raise DataError(f"{spec}: the image size must be >= 1 pixel, got {size[0]} x {size[1]}")
    return size


def _made_as_now(task_dir: Path) -> bool:
    """Whether the cached video task in `task_dir` exists and was made with today's frame conversion."""
    try:
        return json.loads((task_dir / "meta.json").read_text()).get("conversion") == CONVERSION
    except (OSError, ValueError):
        return False
