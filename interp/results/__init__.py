"""Results: one store for every analysis result (see :mod:`interp.results.store`).

>>> fv = interp.visualize(run, "conv2")
>>> folder = interp.results.save(fv, run.report_dir() / "featvis" / "conv2")
>>> interp.results.load(folder).layer
'conv2'
"""

from .store import describe, kind_of, list_kinds, load, register, save, settings_hash

__all__ = ["describe", "kind_of", "list_kinds", "load", "register", "save", "settings_hash"]
