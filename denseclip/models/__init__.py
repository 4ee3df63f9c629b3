from . import backbones, dense, heads, refiners, segmentors, text  # noqa: F401  (registration)
