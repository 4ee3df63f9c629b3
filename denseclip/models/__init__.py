from . import backbones, dense, refiners, segmentors, text  # noqa: F401  (registration)
