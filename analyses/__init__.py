"""One module per analysis.

Every analysis has the same shape (see :mod:`analyses.base`): a ``Config``
dataclass in, a typed ``Result`` dataclass out, ``result.to_json()`` for the
numbers and ``result.save(out_dir)`` for ``<name>.json`` plus PNG figures.
The report generator reads the JSON files; it never re-runs an analysis.
"""
