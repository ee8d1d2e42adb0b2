"""One module per analysis (the layer between the probe core and the orchestration).

Every analysis has the same shape: a ``Config`` dataclass in, ``run(config)`` (the
long ones, complexity and autoencoder, also take a rich progress bar), a typed
``Result`` dataclass out (:class:`probe.results.Result`: ``to_json`` /
``from_json`` / ``save(out_dir)`` for ``<name>.json`` plus PNG figures).  Next to
its result each module registers what the rest of probe finds by name: its
report question(s) and section, and its training probe where it has one.
Importing this package imports every analysis module, so those registrations
exist (as ``import timm`` fills timm's model registry).

Shared parts: :mod:`analyses.training_runs` (train several models on identical
batches with a hook attached) and :mod:`analyses.probes` (the training-probe
base class and registry).
"""

from analyses import attribution, autoencoder, collapse, complexity, fit, gradients, noise  # noqa: F401
