from . import backbones, dense, heads, refiners, segmentors, text  # noqa: F401  (registration)
# Methods whose file holds a segmentor subclass too import the segmentors, which import the
# backbones, which import dense/: they register after all of them.
from .dense import corrclip, trident  # noqa: F401,E402
