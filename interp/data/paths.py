"""Where data lives: downloads (``$INTERP_DATA_DIR``) and decoded caches (``$INTERP_CACHE_DIR``)."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """Where downloads go: ``$INTERP_DATA_DIR`` or ``~/.cache/interp/data``."""
    return Path(os.environ.get("INTERP_DATA_DIR", Path.home() / ".cache" / "interp" / "data"))


def cache_dir() -> Path:
    """Where decoded datasets are cached: ``$INTERP_CACHE_DIR`` or ``~/.cache/interp/cache``."""
    return Path(os.environ.get("INTERP_CACHE_DIR", Path.home() / ".cache" / "interp" / "cache"))
