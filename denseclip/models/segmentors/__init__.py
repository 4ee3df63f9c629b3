from .base import CLIP_MEAN, CLIP_STD, SlideSegmentor, slide_windows
from .clip_dinoiser_trainer import CLIPDINOiserTrainer
from .encoder_decoder import OpenVocabEncoderDecoder
from .open_vocab import OpenVocabSegmentor

__all__ = ['SlideSegmentor', 'OpenVocabSegmentor', 'OpenVocabEncoderDecoder',
           'CLIPDINOiserTrainer', 'slide_windows', 'CLIP_MEAN', 'CLIP_STD']
