"""Post-hoc refiners of dense class logits (registered in ``MODELS``)."""
from .pamr import PAMRRefiner, pamr

__all__ = ['pamr', 'PAMRRefiner']
