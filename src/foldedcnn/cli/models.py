"""`foldedcnn models`: list the zoo."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("models", help="list the model zoo")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..models import get_spec, list_models
    from ..tables import format_table

    rows = [
        {
            "name": s.name,
            "family": s.family,
            "input": "x".join(map(str, s.input_shape)),
            "classes": s.num_classes,
            "description": s.description,
        }
        for s in map(get_spec, list_models())
    ]
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0
