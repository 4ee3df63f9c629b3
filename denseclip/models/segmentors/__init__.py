from .open_vocab import OpenVocabSegmentor, slide_windows

__all__ = ['OpenVocabSegmentor', 'slide_windows']
