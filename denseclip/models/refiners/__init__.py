"""Post-hoc refiners of dense class logits (registered in ``MODELS``)."""
from .clip_dinoiser import CLIPDINOiserRefiner
from .pamr import PAMRRefiner, pamr

__all__ = ['pamr', 'PAMRRefiner', 'CLIPDINOiserRefiner']
