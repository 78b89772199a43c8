"""Point-in-time feature store (docs/models.md).

- :func:`feature_frame` — features of every ONU at each scoring time of a range
- :func:`materialize_features` — the same, written by date under ``lake/gold/features``
  (incremental) and exposed as the DuckDB view ``features_timeseries``
- :func:`compute_features` / :func:`load_cube` — the pure computation and its loader
- :func:`distributed_feature_frame` / :func:`write_feature_partitions` — the same on
  Dask, one task per (date, OLT group)
- :class:`RollingCube` — an in-memory window fed tick by tick, for online scoring and
  the closed-loop backtest
"""

from guardian_lib.features._compute import (
    FEATURE_COLUMNS,
    H3_RESOLUTION,
    NEIGHBOUR_LEVELS,
    RX_DROP_DB,
    compute_features,
    symptomatic,
)
from guardian_lib.features._cube import EVENT_FEATURE_TYPES, MEASURES, Cube, load_cube
from guardian_lib.features._distributed import (
    distributed_feature_frame,
    materialize_features_distributed,
    olt_partitions,
    write_feature_partitions,
)
from guardian_lib.features._online import RollingCube
from guardian_lib.features._store import (
    LOOKBACK_DAYS,
    feature_frame,
    features_dir,
    materialize_features,
)

__all__ = [
    "FEATURE_COLUMNS",
    "NEIGHBOUR_LEVELS",
    "H3_RESOLUTION",
    "RX_DROP_DB",
    "MEASURES",
    "EVENT_FEATURE_TYPES",
    "LOOKBACK_DAYS",
    "Cube",
    "RollingCube",
    "load_cube",
    "compute_features",
    "symptomatic",
    "feature_frame",
    "materialize_features",
    "features_dir",
    "olt_partitions",
    "distributed_feature_frame",
    "write_feature_partitions",
    "materialize_features_distributed",
]
