"""MAFT+: content-dependent transfer, the mask-aware loss and representation compensation.

Jiao, Zhu, Huang, Zhao, Wei, Shi, "Collaborative Vision-Text Representation Optimizing for
Open-Vocabulary Segmentation", ECCV 2024, https://arxiv.org/abs/2408.00744;
jiaosiyu1999/MAFT-Plus@fd12806 ``maft/maft_plus.py`` (``MAFT_Plus.forward``),
``maft/modeling/maft/{content_dependent_transfer,mask_aware_loss,representation_compensation}.py``,
``maft/modeling/transformer_decoder/fcclip_transformer_decoder.py`` (FC-CLIP's class head),
``maft/modeling/backbone/clip.py``, ``configs/semantic/train_semantic_{base,large}.yaml``.

An FC-CLIP mask generator (mmdet's Mask2Former pixel decoder and masked-attention decoder on the
*detached* CLIP trunk maps; its class head is the text classifier T plus a learned void
embedding) proposes N masks M. The CLIP trunk is fine-tuned; a frozen copy ``backbone_t``
anchors it. With D_s the student trunk's last map, D_t the frozen copy's, head(.) the frozen
CLIP head applied per vector (trunk.head.norm, then open_clip's proj/MLP)::

    in-vocabulary  c_q  = clamp(e^s, 100) · cos(MLP(LN-Linear(MaskPool(F, M_q)) + q_q), [T; void])
    regions        e_q  = head(MaskPool(D_s, 1[M_q > 0]))                   masks detached
    CDT            T'   = LN(T + W · MHA(Q=T, K=P + PE, V=P)),  P = head(D_s) per pixel
    out-of-vocab   l_q  = clamp(e^{s_CLIP}, 100) · <e_q / |e_q|, T'>       (T' not renormalised)
    L_MA  = SmoothL1(softmax(l_q[:K])_{c_j}, minmax_q softIoU(σ(M_q), G_j))   per GT instance j
    L_RC  = SmoothL1(POD(ReLU D_s), POD(ReLU D_t)),  POD = [Σ_H, Σ_W of avgpool_{W/s}] s=1,2,4
    loss  = Mask2Former (2 CE, 5 BCE, 5 Dice, every decoder layer) + 1 · L_MA + 0.1 · L_RC
    test  P_q = [softmax(l_q[:K]) · (1 - p_void,q), p_void,q],  p_void from c_q;
          semantic map = Σ_q softmax(log(P_q + 1e-8))[:K] · σ(M_q)

The in-vocabulary class head only trains the mask generator and gives p_void at test time (the
release's "in_vocab is not used", no geometric ensemble: GEOMETRIC_ENSEMBLE_ALPHA/BETA = -1).
The trunk gets gradients through L_MA (pooled regions and P) and L_RC only.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from mmdet.models.layers import SinePositionalEncoding
from mmengine.config import ConfigDict
from mmseg.models.decode_heads import Mask2FormerHead
from mmseg.structures import SegDataSample
from torch import Tensor, nn

from denseclip.models.backbones import DenseOutput
from denseclip.registry import MODELS

from .base import OpenVocabHead

__all__ = ['ContentDependentTransfer', 'MAFTPlusHead', 'mask_pool',
           'classify', 'mask_aware_loss', 'pod_pool', 'representation_compensation_loss',
           'semantic_probabilities']


# ----------------------------------------------------------------------------- functions
def mask_pool(feats: Tensor, masks: Tensor) -> Tensor:
    """Average of ``feats`` over each binarised mask (FC-CLIP ``MaskPooling``).

    Args:
        feats: (B, C, h, w) features.
        masks: (B, N, h', w') mask logits; resized to (h, w) (bilinear) when they differ, then
            1[M > 0]; no gradient reaches them.

    Returns:
        (B, N, C); an empty mask gives 0 (the release's denominator is Σ mask + 1e-8).
    """
    with torch.no_grad():
        if masks.shape[-2:] != feats.shape[-2:]:
            masks = F.interpolate(masks, size=feats.shape[-2:], mode='bilinear',
                                  align_corners=False)
        binary = (masks > 0).to(feats.dtype)
        weights = binary / (binary.sum(dim=(-1, -2), keepdim=True) + 1e-8)
    return torch.einsum('bchw,bnhw->bnc', feats, weights)


def classify(embeddings: Tensor, classifier: Tensor, logit_scale: Tensor,
             query_to_class: Tensor | None = None) -> Tensor:
    """FC-CLIP ``get_classification_logits``: scaled products with the class texts and void.

    ``clamp(exp(logit_scale), max=100) · <x / |x|, t>``; only x is normalised (the text rows
    are used as given: unit rows for T, the LayerNorm output for CDT's T'). A class scores the
    max over its names (OpenSeg/ODISE's max ensemble); the last row is void.

    Args:
        embeddings: (B, N, E) region embeddings.
        classifier: (Q + 1, E) or per image (B, Q + 1, E): Q name rows, then void.
        logit_scale: scalar, the log of the temperature.
        query_to_class: (Q,) class index of each name row; None: one name per class.

    Returns:
        (B, N, K + 1) logits, void last.
    """
    x = F.normalize(embeddings, dim=-1)
    scale = logit_scale.exp().clamp(max=100)
    logits = scale * (x @ classifier.transpose(-1, -2))  # (B, N, Q + 1)
    names, void = logits[..., :-1], logits[..., -1:]
    if query_to_class is not None:
        num_classes = int(query_to_class.max()) + 1
        index = query_to_class.to(names.device).expand_as(names)
        names = names.new_full((*names.shape[:-1], num_classes), float('-inf')).scatter_reduce(
            -1, index, names, reduce='amax')
    return torch.cat([names, void], dim=-1)


def semantic_probabilities(in_vocab_logits: Tensor, out_vocab_logits: Tensor) -> Tensor:
    """Per-mask class probabilities of the released semantic inference (maft_plus.py
    ``forward`` eval branch, then ``semantic_inference``).

    p_void = softmax(in-vocabulary logits)[void]; P = [softmax(out-of-vocabulary logits[:K]) ·
    (1 - p_void), p_void]; the release stores log(P + 1e-8) and ``semantic_inference`` takes a
    softmax of it again, i.e. (P + 1e-8) / Σ(P + 1e-8), of which the K class columns are kept.

    Args:
        in_vocab_logits: (B, N, K + 1) of the mask generator's class head (void last).
        out_vocab_logits: (B, N, K + 1) of the out-of-vocabulary branch (void last, unused).

    Returns:
        (B, N, K) float32.
    """
    p_void = in_vocab_logits.float().softmax(-1)[..., -1:]
    classes = out_vocab_logits[..., :-1].float().softmax(-1) * (1.0 - p_void)
    probs = torch.cat([classes, p_void], dim=-1)
    return torch.log(probs + 1e-8).softmax(-1)[..., :-1]


def soft_iou(probs: Tensor, target: Tensor) -> Tensor:
    """(N,) soft IoU Σ p·g / (Σ g + Σ p - Σ p·g + 1e-7) of (N, H, W) probabilities with one
    (H, W) binary mask (``MA_Loss.get_iou``)."""
    inter = (probs * target).flatten(1).sum(-1)
    return inter / (target.sum() + probs.flatten(1).sum(-1) - inter + 1e-7)


def mask_aware_loss(out_vocab_logits: Tensor, mask_logits: Tensor, gt_labels: Sequence[Tensor],
                    gt_masks: Sequence[Tensor]) -> Tensor:
    """The mask-aware loss (``MA_Loss``): a region's class probability should follow how well
    its mask covers the instance.

    For every ground-truth instance j of image b (class c_j, mask G_j): p = softmax over the K
    classes of the N regions' logits, column c_j; IoU = soft IoU of σ(M) (bilinearly resized
    to G's size) with G_j, min-max normalised over the N regions (+1e-8); SmoothL1 (β = 1)
    averaged over all instances and regions. The IoUs carry no gradient.

    Args:
        out_vocab_logits: (B, N, K + 1), void last (left out of the softmax).
        mask_logits: (B, N, h, w).
        gt_labels: per image (M_b,) class indices.
        gt_masks: per image (M_b, H, W) binary masks.

    Returns:
        A scalar; 0 (with a graph) when the batch has no instance.
    """
    probs = out_vocab_logits[..., :-1].float().softmax(-1)  # (B, N, K)
    preds, targets = [], []
    for b, (labels, masks) in enumerate(zip(gt_labels, gt_masks)):
        if len(labels) == 0:
            continue
        with torch.no_grad():
            sig = mask_logits[b:b + 1].float().sigmoid()
            if sig.shape[-2:] != masks.shape[-2:]:
                sig = F.interpolate(sig, size=masks.shape[-2:], mode='bilinear',
                                    align_corners=False)
            for mask in masks.float():
                iou = soft_iou(sig[0], mask)
                low, high = iou.min(), iou.max()
                targets.append((iou - low) / (high - low + 1e-8))
        preds.append(probs[b][:, labels.long()].t())  # (M_b, N)
    if not preds:
        return probs.sum() * 0
    return F.smooth_l1_loss(torch.cat(preds).flatten(), torch.stack(targets).flatten())


def pod_pool(x: Tensor, scales: Sequence[int] = (1, 2, 4)) -> Tensor:
    """POD spatial pooling (``representation_compensation.py`` ``_global_pod``).

    A non-square map is first resized (bilinear) to a square of its longer side; at each scale
    s it is average-pooled with kernel W // s, W the width *before* that resize (the release
    reads it first), and the pooled map summed over H and over W; all concatenated.

    Args:
        x: (B, C, H, W).
        scales: the pyramid (released: 1, 2, 4).

    Returns:
        (B, Σ_s C · (w_s + h_s)) with (h_s, w_s) the pooled size at scale s.
    """
    B, _, H, W = x.shape
    if min(scales) < 1 or W // max(scales) < 1:
        raise ValueError(f'pod_pool: a map {W} wide cannot be pooled at scales {tuple(scales)} '
                         '(kernel W // s must be >= 1)')
    if H != W:
        side = max(H, W)
        x = F.interpolate(x, size=(side, side), mode='bilinear', align_corners=False)
    pooled = []
    for s in scales:
        t = F.avg_pool2d(x, kernel_size=W // s)  # (B, C, h_s, w_s)
        pooled += [t.sum(dim=2).reshape(B, -1), t.sum(dim=3).reshape(B, -1)]
    return torch.cat(pooled, dim=1)


def representation_compensation_loss(student: Tensor, teacher: Tensor,
                                     scales: Sequence[int] = (1, 2, 4)) -> Tensor:
    """SmoothL1 (β = 1, mean) between the POD vectors of ReLU(student) and ReLU(teacher)
    (``Representation_Compensation`` with ``prepro='relu'``, ``difference_function='sl1'``).

    Args:
        student, teacher: (B, C, H, W) trunk maps of the same shape.
    """
    if student.shape != teacher.shape:
        raise ValueError(f'representation_compensation_loss: student {tuple(student.shape)} '
                         f'and teacher {tuple(teacher.shape)} maps differ in shape')
    return F.smooth_l1_loss(pod_pool(student.float().clamp(min=0), scales),
                            pod_pool(teacher.float().clamp(min=0), scales))


# ----------------------------------------------------------------------------- modules
@MODELS.register_module()
class ContentDependentTransfer(nn.Module):
    """CDT: the class texts attend to one image's pixels (``ContentDependentTransfer`` with
    ``ShortCut_CrossAttention``).

    ``T' = LN(T + W · MHA(Q=T, K=P + PE, V=P))``, or in panoptic mode ``T + LN(W · MHA)`` with
    W zero-initialised. PE is the normalised sine encoding of the pixel grid (Mask2Former's
    ``PositionEmbeddingSine(E / 2, normalize=True)``, which mmdet's ``SinePositionalEncoding``
    equals); the queries carry none.

    Args:
        embed_dim: E, the joint space width (released ``cdt_params`` [640, 8] for B; L keeps
            config.py's default [768, 8]).
        num_heads: attention heads.
        panoptic: the panoptic variant.
    """

    def __init__(self, embed_dim: int, num_heads: int = 8, panoptic: bool = False) -> None:
        super().__init__()
        if embed_dim % 2 or embed_dim % num_heads:
            raise ValueError(f'ContentDependentTransfer: embed_dim={embed_dim} must be even and '
                             f'divisible by num_heads={num_heads}')
        self.embed_dim = embed_dim
        self.panoptic = panoptic
        self.pos = SinePositionalEncoding(num_feats=embed_dim // 2, normalize=True)
        self.attn = nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)
        self.norm = nn.LayerNorm(embed_dim)
        # The release's _reset_parameters runs before its W ('MLP') exists: Xavier reaches the
        # attention's in_proj and out_proj weights only; W keeps nn.Linear's default init.
        nn.init.xavier_uniform_(self.attn.in_proj_weight)
        nn.init.xavier_uniform_(self.attn.out_proj.weight)
        self.proj = nn.Linear(embed_dim, embed_dim)  # W
        if panoptic:
            nn.init.zeros_(self.proj.weight)
            nn.init.zeros_(self.proj.bias)

    def forward(self, pixels: Tensor, text: Tensor) -> Tensor:
        """Transfer the text to each image.

        Args:
            pixels: (B, E, h, w) P, the CLIP head applied per pixel.
            text: (Q, E) the classifier rows (names, then void).

        Returns:
            (B, Q, E) T' per image.
        """
        B, E, h, w = pixels.shape
        if text.shape[-1] != E or E != self.embed_dim:
            raise ValueError(f'ContentDependentTransfer: pixels {tuple(pixels.shape)} and text '
                             f'{tuple(text.shape)} must both have width {self.embed_dim}')
        pos = self.pos(pixels.new_zeros((B, h, w), dtype=torch.bool)).to(pixels.dtype)
        value = pixels.flatten(2).transpose(1, 2)  # (B, hw, E)
        key = value + pos.flatten(2).transpose(1, 2)  # (B, hw, E)
        query = text.to(pixels.dtype).unsqueeze(0).expand(B, -1, -1)  # (B, Q, E)
        out = self.proj(self.attn(query, key, value, need_weights=False)[0])
        if self.panoptic:
            return query + self.norm(out)
        return self.norm(query + out)


@MODELS.register_module()
class MAFTPlusHead(OpenVocabHead, Mask2FormerHead):
    """MAFT+'s head (see the module docstring): FC-CLIP's mask generator (mmdet's Mask2Former
    parts, a text classifier with a void embedding as class head), the frozen trunk copy
    ``backbone_t``, CDT, the out-of-vocabulary classification, L_MA and L_RC.

    The backbone (the segmentor's, fine-tuned) must give ``DenseOutput.levels``: the trunk's
    stage maps, the last one its output D (``CLIPConvNeXt``: stage 4; ``trunk.norm_pre`` is
    the identity in open_clip's ConvNeXts), and ``images``. The text is (Q, T, E): Q names in
    T templates (the release: VILD's 14), averaged per name as FC-CLIP does.

    Args:
        num_classes: K, the training classes (the mask generator's no-object index).
        teacher: config of ``backbone_t``, the segmentor's backbone config (the same weights,
            frozen); its ``dense_head`` is the frozen CLIP head used for regions and P (equal
            to the student's, which the release freezes: ``_freeze``).
        embed_dim: E, the joint space width.
        cdt_heads: CDT's attention heads.
        panoptic_cdt: CDT's panoptic variant.
        mask_aware_weight: weight of L_MA (released 1: ``ranking_loss`` unweighted).
        rc_weight: weight of L_RC (``rc_weights`` 0.1).
        rc_scales: POD scales (``spp_scales`` [1, 2, 4]).
        cdt_pixels: how P is laid out: ``'released'`` reproduces ``MAFT_Plus.
            visual_prediction_forward_convnext``, which reshapes the (B, C, h, w) trunk map to
            (B·h·w, C) without moving C last, so each "pixel" the head embeds is C consecutive
            values of the flattened map (runs of one or two channels along a row), and the
            released checkpoints' CDT was trained on those; ``'per_pixel'`` embeds the channel
            vector of each location (what the paper describes: P = head(D_s) per pixel).
        **kwargs: mmseg's / mmdet's ``Mask2FormerHead`` settings.
    """

    scores = 'probs'
    merges_synonyms = True  # the release's max over a class's names' logits

    def __init__(self, num_classes: int, teacher: dict, embed_dim: int, cdt_heads: int = 8,
                 panoptic_cdt: bool = False, mask_aware_weight: float = 1.0,
                 rc_weight: float = 0.1, rc_scales: Sequence[int] = (1, 2, 4),
                 cdt_pixels: Literal['released', 'per_pixel'] = 'released',
                 **kwargs) -> None:
        if cdt_pixels not in ('released', 'per_pixel'):
            raise ValueError(f"MAFTPlusHead: cdt_pixels={cdt_pixels!r}; expected 'released' "
                             "(the release's reshape, for its checkpoints) or 'per_pixel'")
        kwargs = {k: ConfigDict(v) if isinstance(v, dict) else v for k, v in kwargs.items()}
        super().__init__(num_classes=num_classes, **kwargs)
        C = kwargs['feat_channels']
        # FC-CLIP's class head replaces mmdet's K+1-way linear layer: a 3-layer MLP into the
        # joint space over (pooled pixel-decoder features + query), scored against the text.
        self.cls_embed = nn.Sequential(nn.Linear(C, C), nn.ReLU(inplace=True), nn.Linear(C, C),
                                       nn.ReLU(inplace=True), nn.Linear(C, embed_dim))
        self.mask_pooling_proj = nn.Sequential(nn.LayerNorm(C), nn.Linear(C, C))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.void_embedding = nn.Embedding(1, embed_dim)
        self.cdt = ContentDependentTransfer(embed_dim, cdt_heads, panoptic_cdt)
        self.backbone_t = MODELS.build(teacher)
        for attr in ('dense_head', 'forward_dense'):
            if not callable(getattr(self.backbone_t, attr, None)):
                raise TypeError(f'MAFTPlusHead: teacher {type(self.backbone_t).__name__} has no '
                                f'{attr}(); use CLIPConvNeXt (or CLIPViTStages)')
        if self.backbone_t.embed_dim != embed_dim:
            raise ValueError(f'MAFTPlusHead: embed_dim={embed_dim} but the teacher '
                             f'{type(self.backbone_t).__name__} embeds in '
                             f'{self.backbone_t.embed_dim}')
        self.backbone_t.requires_grad_(False)
        self.backbone_t.eval()
        # CLIP's own temperature (frozen), for the out-of-vocabulary logits
        self.register_buffer('clip_logit_scale',
                             self.backbone_t.clip.logit_scale.detach().float().reshape(()).clone())
        self.embed_dim = embed_dim
        self.num_levels = len(kwargs['in_channels'])
        self.mask_aware_weight = mask_aware_weight
        self.rc_weight = rc_weight
        self.rc_scales = tuple(rc_scales)
        self.cdt_pixels = cdt_pixels
        self._classifier: tuple[Tensor, Tensor | None] | None = None

    def train(self, mode: bool = True) -> 'MAFTPlusHead':
        super().train(mode)
        self.backbone_t.eval()  # the frozen copy never trains
        return self

    # ----------------------------------------------------------------- text side
    def text_classifier(self, text: Tensor) -> Tensor:
        """(Q, T, E) -> (Q + 1, E): per name the template mean of unit vectors, renormalised
        (FC-CLIP ``get_text_classifier``), then the unit void embedding."""
        if text.ndim != 3 or text.shape[-1] != self.embed_dim:
            raise ValueError(f'MAFTPlusHead: text of shape {tuple(text.shape)}, expected (Q, T, '
                             f'{self.embed_dim}): names x templates x embed_dim')
        names = F.normalize(F.normalize(text.float(), dim=-1).mean(1), dim=-1)
        void = F.normalize(self.void_embedding.weight.float(), dim=-1)
        return torch.cat([names, void])

    # ----------------------------------------------------------------- mask generator
    def forward(self, levels: Sequence[Tensor], classifier: Tensor,
                query_to_class: Tensor | None = None) -> tuple[list[Tensor], list[Tensor]]:
        """Mask2Former on the detached trunk maps: per prediction (the learnable queries, then
        each decoder layer) class logits (B, N, K + 1) and masks (B, N, h/4, w/4).

        ``classifier`` (Q + 1, E) reaches :meth:`_forward_head`, which mmdet's forward calls
        with a fixed signature, through ``self._classifier`` for this call only.
        """
        self._classifier = (classifier, query_to_class)
        try:
            return Mask2FormerHead.forward(self, [level.detach() for level in levels], [])
        finally:
            self._classifier = None

    def _forward_head(self, decoder_out: Tensor, mask_feature: Tensor,
                      attn_mask_target_size: tuple[int, int]) -> tuple[Tensor, Tensor, Tensor]:
        """mmdet's ``_forward_head`` with FC-CLIP's class head (``forward_prediction_heads``)."""
        classifier, query_to_class = self._classifier
        decoder_out = self.transformer_decoder.post_norm(decoder_out)
        mask_pred = torch.einsum('bqc,bchw->bqhw', self.mask_embed(decoder_out), mask_feature)
        pooled = self.mask_pooling_proj(mask_pool(mask_feature, mask_pred))  # (B, N, C)
        embed = self.cls_embed(pooled + decoder_out)  # (B, N, E)
        cls_pred = classify(embed, classifier.to(embed.dtype), self.logit_scale, query_to_class)
        attn_mask = F.interpolate(mask_pred, attn_mask_target_size, mode='bilinear',
                                  align_corners=False)
        # (B, N, h, w) -> (B * heads, N, h * w): True where a query may not attend
        attn_mask = attn_mask.flatten(2).unsqueeze(1).repeat((1, self.num_heads, 1, 1))
        attn_mask = (attn_mask.flatten(0, 1).sigmoid() < 0.5).detach()
        return cls_pred, mask_pred, attn_mask

    # ----------------------------------------------------------------- out-of-vocabulary
    def out_of_vocabulary_logits(self, trunk: Tensor, masks: Tensor, classifier: Tensor,
                                 query_to_class: Tensor | None = None) -> Tensor:
        """(B, N, K + 1) logits of the CLIP regions against CDT's per-image T'.

        Args:
            trunk: (B, C, h, w) D_s, the fine-tuned trunk's output.
            masks: (B, N, h', w') mask logits (pooled through 1[M > 0], no gradient).
            classifier: (Q + 1, E) T with void.
        """
        pooled = mask_pool(trunk, masks.detach())  # (B, N, C)
        B, N, C = pooled.shape
        regions = self.backbone_t.dense_head(pooled.reshape(B * N, C, 1, 1)).reshape(B, N, -1)
        pixels = self.pixel_embeddings(trunk)  # P (B, E, h, w)
        transferred = self.cdt(pixels, classifier)  # T' (B, Q + 1, E)
        return classify(regions, transferred, self.clip_logit_scale, query_to_class)

    def pixel_embeddings(self, trunk: Tensor) -> Tensor:
        """P, CDT's keys and values: (B, C, h, w) -> (B, E, h, w), see ``cdt_pixels``."""
        if self.cdt_pixels == 'per_pixel':
            return self.backbone_t.dense_head(trunk)
        B, C, h, w = trunk.shape
        # Deviation kept for the released weights: (B, C, h, w) memory read as (B·h·w, C) rows
        # (maft_plus.py visual_prediction_forward_convnext: x.reshape(batch*h*w, channel)).
        rows = trunk.contiguous().reshape(B * h * w, C, 1, 1)
        return self.backbone_t.dense_head(rows).reshape(B, h, w, -1).permute(0, 3, 1, 2)

    # ----------------------------------------------------------------- protocol
    def _check_levels(self, dense: DenseOutput) -> None:
        if len(dense.levels) != self.num_levels:
            raise ValueError(f'MAFTPlusHead: the backbone gave {len(dense.levels)} levels, the '
                             f'pixel decoder takes {self.num_levels} (in_channels): give the '
                             'trunk stage maps (CLIPConvNeXt, CLIPViTStages)')

    def loss(self, dense: DenseOutput, text: Tensor, data_samples: Sequence[SegDataSample],
             query_to_class: Tensor | None = None) -> dict[str, Tensor]:
        """Mask2Former's terms (every prediction), L_MA and L_RC."""
        self._check_levels(dense)
        classifier = self.text_classifier(text)
        num_classes = classifier.shape[0] - 1 if query_to_class is None else \
            int(query_to_class.max()) + 1
        if num_classes != self.num_classes:
            raise ValueError(f'MAFTPlusHead: a training vocabulary of {num_classes} classes, but '
                             f'the head was built with num_classes={self.num_classes} (its '
                             'no-object index and class weights)')
        gt_instances, img_metas = self._seg_data_to_instance_data(data_samples)
        cls_list, mask_list = self(dense.levels, classifier, query_to_class)
        losses = self.loss_by_feat(cls_list, mask_list, gt_instances, img_metas)
        student = dense.levels[-1]
        with torch.no_grad():
            teacher = self.backbone_t.forward_dense(dense.images).levels[-1]
        masks = mask_list[-1].detach()
        logits = self.out_of_vocabulary_logits(student, masks, classifier, query_to_class)
        losses['loss_mask_aware'] = self.mask_aware_weight * mask_aware_loss(
            logits, masks, [g.labels for g in gt_instances], [g.masks for g in gt_instances])
        losses['loss_rc'] = self.rc_weight * representation_compensation_loss(
            student, teacher, self.rc_scales)
        return losses

    def predict(self, dense: DenseOutput, text: Tensor,
                query_to_class: Tensor | None = None) -> Tensor:
        """(B, K, H, W) class probabilities at the window's size (:func:`semantic_probabilities`
        per mask, masks upsampled to the input before σ, as the release)."""
        self._check_levels(dense)
        classifier = self.text_classifier(text)
        cls_list, mask_list = self(dense.levels, classifier, query_to_class)
        masks = mask_list[-1]
        logits = self.out_of_vocabulary_logits(dense.levels[-1], masks, classifier,
                                               query_to_class)
        probs = semantic_probabilities(cls_list[-1], logits)  # (B, N, K)
        masks = F.interpolate(masks.float(), size=dense.images.shape[-2:], mode='bilinear',
                              align_corners=False)
        return torch.einsum('bnk,bnhw->bkhw', probs, masks.sigmoid())
