"""Loading CLIP (open_clip names, tags, local files), position-embedding interpolation."""
from .loading import (CLIPSource, WeightsNotFoundError, infer_openai_config, load_clip,
                      load_state_dict_strict, read_state_dict)
from .pos_embed import resample_pos_embed

__all__ = ['CLIPSource', 'WeightsNotFoundError', 'infer_openai_config', 'load_clip',
           'load_state_dict_strict', 'read_state_dict', 'resample_pos_embed']
