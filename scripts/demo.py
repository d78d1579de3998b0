"""`make demo`: the main job on embedded data (grows with each feature)."""

from __future__ import annotations

import sys

from foldedcnn.cli import main
from foldedcnn.models import list_models

OUT = "runs/demo"


def step(title: str, argv: list[str]) -> None:
    print(f"\n=== {title}\n$ foldedcnn {' '.join(argv)}", flush=True)
    if main(argv) != 0:
        sys.exit(f"demo step failed: {title}")


if __name__ == "__main__":
    squareable = list_models("resnet")
    others = [m for m in list_models() if m not in squareable]
    step("FLOPs and arithmetic intensity of the zoo, f = 1..4",
         ["analyze", *others, "--fold", "1", "2", "3", "4", "--plot", f"{OUT}/intensity.png"])
    step("ResNet-18 folds only by perfect squares", ["analyze", *squareable, "--fold", "1", "4"])
    step("Generated game-HUD data (preview grid)",
         ["data", "game", "game-lol-gold-fraction", "--n", "1000", "--out", f"{OUT}/game", "--preview",
          f"{OUT}/game-preview.png"])
    step("Person-in-region task on vtest.avi (MOG2 oracle)",
         ["data", "video", "vtest", "--out", f"{OUT}/vtest", "--preview", f"{OUT}/vtest-preview.png"])
    print(f"\nplots and outputs are under {OUT}/")
