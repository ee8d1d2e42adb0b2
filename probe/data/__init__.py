"""Datasets: the built-in synthetic scenes and readers for published on-disk formats.

``get_dataset(name, root, split, input_size, **options)`` is the only door in;
importing the reader modules fills the registry.
"""

from probe.data.base import (  # noqa: F401
    DATASETS,
    BadItemLog,
    DatasetInfo,
    DepthDataset,
    RawSample,
    dataset_info,
    dataset_present,
    get_dataset,
    list_datasets,
    register_dataset,
)

# Importing the readers fills the registry, in this order (the order `probe datasets` lists).
# isort: off
from probe.data import synthetic as _synthetic  # noqa: E402,F401
from probe.data import nyu as _nyu  # noqa: E402,F401
from probe.data import nyu_test as _nyu_test  # noqa: E402,F401
from probe.data import make3d as _make3d  # noqa: E402,F401
from probe.data import kitti as _kitti  # noqa: E402,F401
from probe.data import folder as _folder  # noqa: E402,F401
from probe.data import video as _video  # noqa: E402,F401
from probe.data import kitti_raw as _kitti_raw  # noqa: E402,F401
# isort: on
