from .clip_dinoiser_trainer import CLIPDINOiserTrainer
from .open_vocab import OpenVocabSegmentor, slide_windows

__all__ = ['OpenVocabSegmentor', 'CLIPDINOiserTrainer', 'slide_windows']
