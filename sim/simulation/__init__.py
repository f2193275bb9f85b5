"""One run: build the model (``build``), its lifecycle (``lifecycle``), ``summary`` (with the
estimators of ``stats``: censoring, competing outcomes, intervals), ``results``."""

from .build import Model, build
from .lifecycle import run
from .results import Results
from .summary import LEGS, Summary, leg_times, summarize

__all__ = ["LEGS", "Model", "Results", "Summary", "build", "leg_times", "run", "summarize"]
