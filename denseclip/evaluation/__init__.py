"""Evaluation metrics, registered in mmseg's ``METRICS`` (``denseclip.registry``)."""
from .open_vocab_metric import OpenVocabIoUMetric

__all__ = ['OpenVocabIoUMetric']
