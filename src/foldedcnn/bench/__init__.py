"""Throughput benchmark: interleaved trials across variants, images/s, FLOP/s, utilization, roofline."""

from .machine import machine_info, machine_slug
from .report import COLUMNS, derive_rows, write_report
from .runner import Variant, measure

__all__ = ["COLUMNS", "Variant", "derive_rows", "machine_info", "machine_slug", "measure", "write_report"]
