from .dense_clip import build_dense_clip

__all__ = ['build_dense_clip']
