"""mmdet detectors over dense CLIP, registered in mmdet's ``MODELS``."""
from .regionclip import DetVocabularyCheckHook, RegionCLIPDetector  # noqa: F401
from .denseclip import DenseCLIPMaskRCNN, DenseCLIPRetinaNet  # noqa: F401
