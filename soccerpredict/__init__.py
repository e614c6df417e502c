"""SoccerPredict domain library: data contracts, readers, features, models, metrics, registry.

Nothing in this package imports Ray; the `ray_jobs` package maps these functions over the cluster.
"""

__version__ = "0.1.0"
