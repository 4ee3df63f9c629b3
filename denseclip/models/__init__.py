from . import backbones, dense, heads, refiners, segmentors, text  # noqa: F401  (registration)
# Methods whose file holds a segmentor subclass too import the segmentors, which import the
# backbones, which import dense/: they register after all of them.
from .dense import corrclip, trident  # noqa: F401,E402
from . import textspan  # noqa: F401,E402  (TextSpanSegmentor; imports the segmentors)
from . import grounding  # noqa: F401,E402  (phrase localization; imports the segmentors)
from . import detectors  # noqa: F401,E402  (mmdet detectors; import the heads and backbones)
