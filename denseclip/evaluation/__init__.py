"""Evaluation metrics, registered in mmseg's ``METRICS`` (``denseclip.registry``)."""
from .open_vocab_metric import OpenVocabIoUMetric

__all__ = ['OpenVocabIoUMetric']
from .textspan_metric import ForegroundSegMetric  # noqa: E402,F401
from .grounding_metric import BoxAccuracyMetric, PointingGameMetric  # noqa: E402,F401
from .ovd_metric import OVDCocoMetric  # noqa: E402,F401  (mmdet's METRICS: COCO OVD novel/base)
