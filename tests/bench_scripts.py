"""Load a script of benchmarks/ as a module, as `python benchmarks/<name>.py` would see it."""

import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@contextmanager
def bench_script(name: str) -> Iterator[ModuleType]:
    """benchmarks/<name>.py as module <name>_script; its folder is importable meanwhile (its own _modules)."""
    sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"{name}_script", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]
        sys.path.remove(str(BENCHMARKS))


def markdown_rows(table: str) -> list[dict[str, str]]:
    """The rows of a Markdown table (header, rule, rows; as foldedcnn.tables.markdown_table writes it) as dicts of
    its stripped cells by column."""
    header, _, *lines = table.strip().splitlines()

    def cells(line: str) -> list[str]:
        return [c.strip() for c in line.strip("|").split("|")]

    return [dict(zip(cells(header), cells(line), strict=True)) for line in lines]
