"""The test suite (a package, so that `tests.conftest` is this one even where another
distribution installed a top-level `tests`, as ciw, a benchmark extra, does)."""
