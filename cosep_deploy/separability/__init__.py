"""Class-separability scoring for CoSeP: per-class statistics -> JM profile distances -> k-medoids,
Mean Simplified Silhouette and the Kneedle knee -> which channels each layer keeps.

Pipeline for one layer (or coupled group): :func:`resolve_taps` + :func:`collect_class_stats` give a
:class:`ClassStats` per tap; :func:`profile_distances` turns its mean/var into an N x N distance matrix
(:func:`combine_distances` for coupled layers); :func:`select_channels` clusters it and returns a
:class:`ChannelSelection`. ``docs/method.md`` in the repository gives the method, its equations and every
place this project departs from the paper. The knee rules are in :mod:`.knee`, alignment in :mod:`.align`.
"""

from cosep_deploy.separability.align import Alignment, align_count, align_kept
from cosep_deploy.separability.collect import SPATIAL_MODES, collect_class_stats, parse_spatial
from cosep_deploy.separability.distances import PRECISIONS, ProfileDistances, combine_distances, profile_distances
from cosep_deploy.separability.jm import VAR_FLOOR, jm_distance
from cosep_deploy.separability.kmedoids import KMedoidsResult, kmedoids
from cosep_deploy.separability.knee import KNEE_RULES, KneeBounds, KneeDecision, choose_knee, find_knee
from cosep_deploy.separability.selection import K_GRIDS, KEEP_RULES, ChannelSelection, coarse_k_grid, select_channels
from cosep_deploy.separability.silhouette import mean_simplified_silhouette
from cosep_deploy.separability.stats import ClassStats
from cosep_deploy.separability.taps import HOOK_POINTS, TapMap, resolve_taps

__all__ = [
    "HOOK_POINTS",
    "KEEP_RULES",
    "KNEE_RULES",
    "K_GRIDS",
    "PRECISIONS",
    "SPATIAL_MODES",
    "VAR_FLOOR",
    "Alignment",
    "ChannelSelection",
    "ClassStats",
    "KMedoidsResult",
    "KneeBounds",
    "KneeDecision",
    "ProfileDistances",
    "TapMap",
    "align_count",
    "align_kept",
    "choose_knee",
    "coarse_k_grid",
    "collect_class_stats",
    "combine_distances",
    "find_knee",
    "jm_distance",
    "kmedoids",
    "mean_simplified_silhouette",
    "parse_spatial",
    "profile_distances",
    "resolve_taps",
    "select_channels",
]
