"""MTA-CLIP: a Mask2Former decoder whose queries are mask queries and the class texts.

Das, Hu, Jiang, Schiele, "MTA-CLIP: Language-Guided Semantic Segmentation with Mask-Text
Alignment", ECCV 2024, https://arxiv.org/abs/2407.21654; anurag-198/MTA_CLIP@a62deff
``mta_clip/mask2former_head_det.py`` (``Mask2FormerHead_det``: forward, ``_forward_head``,
``_loss_by_feat_single``), ``mask2former_head_seg.py`` (``Mask2FormerHead_lang``: predict),
``local_configs/r50_1.py``. Everything Mask2Former is mmdet's and mmseg's (pixel decoder,
transformer decoder, Hungarian matching on sampled points, CE / BCE / Dice); this file adds the
text queries, their refinement and the mask-to-text loss. With T (K+1, Z, D) the class texts of
Z learned prompt sets, the K classes and 'none' (the segmentor's ``extra_names``)::

    queries  = LN([q_1..q_N; Linear_{D->C}(T_{z,k}) for z, k])       N + Z(K+1) joint queries
    per decoder layer l (on the post-norm queries q'):
        class    = Linear(q'_n)                               (N, K+1), mmdet's cls_embed
        mask     = MLP(q'_n) · F_mask                         mmdet's mask_embed, every query
        t'_{z,k} = T_{z,k} + γ ⊙ LN(Linear_{C->D}(q'_{z,k}))  γ ∈ R^D, init 1e-4 (refinement)
        S_{n,z,k} = cos(Linear_{C->D}(q'_n), t'_{z,k})                         (mask-text score)
    loss = Σ_l [2·CE(class) + 5·BCE(mask) + 5·Dice(mask) + 1·L_text(S)]   (9 decoder layers)
    test: Σ_n softmax(class_n)[:K] · σ(mask_n), masks upsampled to the window first

The text scores S are a training signal only (the release's test path does not use them), and
the class head is a K+1-way linear layer: a trained model names the classes it was trained on.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmcv.ops import point_sample
from mmdet.models.utils import get_uncertain_point_coords_with_randomness
from mmdet.utils import reduce_mean
from mmengine.config import ConfigDict
from mmseg.models.decode_heads import Mask2FormerHead
from mmseg.structures import SegDataSample
from torch import Tensor, nn

from denseclip.models.backbones import DenseOutput
from denseclip.registry import MODELS

from .base import OpenVocabHead

QueryLossType = Literal[0, 1, 2]


def mask_text_contrastive_loss(scores: Tensor, labels: Tensor, class_weight: Tensor,
                               loss_type: QueryLossType = 2) -> Tensor:
    """MTA-CLIP's mask-to-text loss: each query's target text against every class and prompt.

    The logits are the raw cosines (no temperature). With c the query's target class (its
    matched ground truth, or 'none' for an unmatched query), z* = argmax_z S[c, z] and the
    denominator Σ_{k,z} exp S[k, z] over every class and prompt:

    * ``loss_type=2``: -log(exp S[c, z*] / Σ_{k,z} exp S[k, z]); the target class's other
      prompts stay in the denominator (the released config's choice);
    * ``loss_type=1``: as 2 with the target class's non-max prompts left out of the denominator;
    * ``loss_type=0``: the mean over the target class's prompts z of -log(exp S[c, z] / Σ).

    Each query is weighted by ``class_weight[c]`` (0.1 for 'none') and the sum divided by the
    weights' sum (``_loss_by_feat_single``'s ``query_loss_type`` branches; its ``+ 1e-8`` in
    the denominator, below 1e-8 / e⁻¹ relative here, is left out).

    Args:
        scores: (N, C, Z) cosines of N queries with C classes (the last one 'none') in Z
            prompts.
        labels: (N,) target classes in [0, C).
        class_weight: (C,) per-class weights.
        loss_type: 0, 1 or 2 as above.

    Returns:
        A scalar.
    """
    if loss_type not in (0, 1, 2):
        raise ValueError(f'mask_text_contrastive_loss: loss_type={loss_type!r}; the released '
                         'query_loss_type values are 0, 1 and 2')
    scores = scores.float()
    rows = torch.arange(scores.shape[0], device=scores.device)
    target = scores[rows, labels]  # (N, Z): the target class in every prompt
    best, z_star = target.max(dim=1)
    if loss_type == 1:
        others = F.one_hot(labels, scores.shape[1]).bool()[:, :, None] & (
            ~F.one_hot(z_star, scores.shape[2]).bool())[:, None, :]
        scores = scores.masked_fill(others, float('-inf'))
    log_denominator = scores.flatten(1).logsumexp(dim=1)  # (N,)
    if loss_type == 0:
        per_query = (log_denominator[:, None] - target).mean(dim=1)
    else:
        per_query = log_denominator - best
    weight = class_weight[labels]
    return (weight * per_query).sum() / weight.sum()


@MODELS.register_module()
class MTACLIPHead(OpenVocabHead, Mask2FormerHead):
    """MTA-CLIP's mask-text decoder head (see the module docstring).

    Args:
        num_classes: K, the training classes; the text has K + 1 rows (the last 'none').
        text_dim: D, the joint-space width of the text embeddings.
        num_prompts: Z, prompt sets per class (the prompt learner's ``num_sets``).
        query_loss_type: the mask-to-text loss, :func:`mask_text_contrastive_loss`.
        loss_queries_weight: its weight (``loss_queries_wt``).
        gamma_init: initial γ of the text refinement.
        mask_avg_factor: what the mask BCE and Dice losses are divided by: ``'class_weight'``
            (the release: its ``avg_factor`` of the class loss, Σ_n class_weight[c_n], i.e.
            matched queries + 0.1 x unmatched ones, because the variable is overwritten before
            the mask losses use it) or ``'matched'`` (mmdet's: the number of matched queries).
        **kwargs: mmseg's / mmdet's ``Mask2FormerHead`` settings (``in_channels``,
            ``feat_channels``, ``out_channels``, ``num_queries``, ``pixel_decoder``,
            ``transformer_decoder``, ``positional_encoding``, losses, ``train_cfg``).
    """

    scores = 'probs'

    def __init__(self, num_classes: int, text_dim: int, num_prompts: int = 3,
                 query_loss_type: QueryLossType = 2, loss_queries_weight: float = 1.0,
                 gamma_init: float = 1e-4,
                 mask_avg_factor: Literal['class_weight', 'matched'] = 'class_weight',
                 **kwargs) -> None:
        kwargs = {k: ConfigDict(v) if isinstance(v, dict) else v for k, v in kwargs.items()}
        if mask_avg_factor not in ('class_weight', 'matched'):
            raise ValueError(f'MTACLIPHead: mask_avg_factor={mask_avg_factor!r}; use '
                             "'class_weight' (released) or 'matched' (mmdet)")
        if query_loss_type not in (0, 1, 2):
            raise ValueError(f'MTACLIPHead: query_loss_type={query_loss_type!r}; the released '
                             'values are 0, 1 and 2')
        super().__init__(num_classes=num_classes, **kwargs)
        C = kwargs['feat_channels']
        self.num_prompts = num_prompts
        self.text_dim = text_dim
        self.query_loss_type = query_loss_type
        self.loss_queries_weight = loss_queries_weight
        self.mask_avg_factor = mask_avg_factor
        # one learnable positional embedding per mask query and per (prompt, class) text query
        self.query_embed = nn.Embedding(self.num_queries + num_prompts * (num_classes + 1), C)
        self.query_project = nn.Linear(text_dim, C)  # T -> text queries
        self.norm_project = build_norm_layer(dict(type='LN'), C)[1]  # over all queries
        self.query_reproject = nn.Linear(C, text_dim)  # text queries -> refinement
        self.norm_reproject = build_norm_layer(dict(type='LN'), text_dim)[1]
        self.mask_reproject = nn.Linear(C, text_dim)  # mask queries -> joint space
        self.gamma = nn.Parameter(torch.full((text_dim,), gamma_init))

    # ----------------------------------------------------------------- forward
    def _check_text(self, text: Tensor) -> None:
        expected = (self.num_classes + 1, self.num_prompts, self.text_dim)
        if tuple(text.shape) != expected:
            raise ValueError(
                f'MTACLIPHead: text embeddings of shape {tuple(text.shape)}, expected '
                f'{expected}: the {self.num_classes} classes the head was built for plus '
                "'none' (the segmentor's extra_names), in num_prompts="
                f'{self.num_prompts} prompt sets of width text_dim={self.text_dim}. Its class '
                'head and text-query embeddings are sized by the training vocabulary, so the '
                'test vocabulary must be the training one')

    def _forward_head(self, decoder_out: Tensor, mask_feature: Tensor, text: Tensor,
                      attn_mask_target_size: tuple[int, int], with_scores: bool
                      ) -> tuple[Tensor, Tensor | None, Tensor, Tensor]:
        """Class logits (B, N, K+1), text scores (B, N, K+1, Z) (None unless ``with_scores``),
        masks (B, N, h, w) of the mask queries, and every query's cross-attention mask."""
        decoder_out = self.transformer_decoder.post_norm(decoder_out)
        N = self.num_queries
        query_mask, query_text = decoder_out[:, :N], decoder_out[:, N:]
        scores = None
        if with_scores:
            B = decoder_out.shape[0]
            refinement = self.norm_reproject(self.query_reproject(query_text))
            # (B, Z, K+1, D), the text queries in T's prompt-major order
            refined = text + self.gamma * refinement.view(B, *text.shape[1:])
            refined = F.normalize(refined, dim=-1)
            mask_text = F.normalize(self.mask_reproject(query_mask), dim=-1)  # (B, N, D)
            scores = torch.einsum('bnd,bzkd->bnkz', mask_text, refined)
        cls_pred = self.cls_embed(query_mask)
        mask_pred = torch.einsum('bqc,bchw->bqhw', self.mask_embed(decoder_out), mask_feature)
        attn_mask = F.interpolate(mask_pred, attn_mask_target_size, mode='bilinear',
                                  align_corners=False)
        # (B, Q, h, w) -> (B * heads, Q, h * w): True where a query may not attend
        attn_mask = attn_mask.flatten(2).unsqueeze(1).repeat((1, self.num_heads, 1, 1))
        attn_mask = (attn_mask.flatten(0, 1).sigmoid() < 0.5).detach()
        return cls_pred, scores, mask_pred[:, :N], attn_mask

    def forward(self, levels: Sequence[Tensor], text: Tensor, with_scores: bool = False
                ) -> tuple[list[Tensor], list[Tensor | None], list[Tensor]]:
        """Per decoder layer: class logits, text scores and masks of the mask queries.

        Args:
            levels: the backbone's multi-level maps (strides 4 to 32).
            text: (K+1, Z, D) class texts, 'none' last.
            with_scores: compute the text scores S (the loss needs them, inference does not).
        """
        self._check_text(text)
        B = levels[0].shape[0]
        text = text.transpose(0, 1).to(levels[0].dtype)  # (Z, K+1, D)
        text_queries = self.query_project(text).flatten(0, 1)  # (Z(K+1), C), prompt-major
        query_feat = self.norm_project(torch.cat([self.query_feat.weight, text_queries]))
        query_feat = query_feat.unsqueeze(0).expand(B, -1, -1)
        query_embed = self.query_embed.weight.unsqueeze(0).expand(B, -1, -1)

        mask_features, memories = self.pixel_decoder(list(levels))
        keys, key_pos = [], []
        for i, memory in enumerate(memories):  # from low to high resolution
            key = self.decoder_input_projs[i](memory).flatten(2).transpose(1, 2)
            keys.append(key + self.level_embed.weight[i].view(1, 1, -1))
            no_padding = memory.new_zeros((B, *memory.shape[-2:]), dtype=torch.bool)
            key_pos.append(self.decoder_positional_encoding(no_padding).flatten(2)
                           .transpose(1, 2))

        text = text.unsqueeze(0)  # broadcast over the batch in the refinement
        levels_n = self.num_transformer_feat_level
        *_, attn_mask = self._forward_head(query_feat, mask_features, text,
                                           memories[0].shape[-2:], with_scores=False)
        cls_list, score_list, mask_list = [], [], []
        for i, layer in enumerate(self.transformer_decoder.layers):
            level = i % levels_n
            attn_mask[attn_mask.sum(-1) == attn_mask.shape[-1]] = False  # none left: see all
            query_feat = layer(query=query_feat, key=keys[level], value=keys[level],
                               query_pos=query_embed, key_pos=key_pos[level],
                               cross_attn_mask=attn_mask, query_key_padding_mask=None,
                               key_padding_mask=None)
            cls_pred, scores, mask_pred, attn_mask = self._forward_head(
                query_feat, mask_features, text, memories[(i + 1) % levels_n].shape[-2:],
                with_scores)
            cls_list.append(cls_pred)
            score_list.append(scores)
            mask_list.append(mask_pred)
        return cls_list, score_list, mask_list

    # ----------------------------------------------------------------- protocol
    def loss(self, dense: DenseOutput, text: Tensor,
             data_samples: Sequence[SegDataSample]) -> dict[str, Tensor]:
        """Mask2Former's terms and the mask-to-text loss at every decoder layer."""
        gt_instances, img_metas = self._seg_data_to_instance_data(data_samples)
        cls_list, score_list, mask_list = self(dense.levels, text, with_scores=True)
        losses = {}
        last = len(cls_list) - 1
        for i, outputs in enumerate(zip(cls_list, score_list, mask_list)):
            prefix = '' if i == last else f'd{i}.'
            layer = self._loss_by_feat_single(*outputs, gt_instances, img_metas)
            losses.update({f'{prefix}{name}': value for name, value in layer.items()})
        return losses

    def _loss_by_feat_single(self, cls_scores: Tensor, text_scores: Tensor,
                             mask_preds: Tensor, batch_gt_instances: list,
                             batch_img_metas: list[dict]) -> dict[str, Tensor]:
        """One decoder layer's losses: mmdet's ``Mask2FormerHead._loss_by_feat_single`` plus
        ``loss_queries`` (targets from mmdet's ``get_targets``: Hungarian matching on
        ``num_points`` random points)."""
        labels, label_weights, mask_targets, mask_weights, num_matched = self.get_targets(
            list(cls_scores), list(mask_preds), batch_gt_instances, batch_img_metas)
        labels = torch.stack(labels).flatten()  # (B * N,) in [0, K], K = unmatched
        label_weights = torch.stack(label_weights).flatten()
        mask_targets = torch.cat(mask_targets)
        mask_weights = torch.stack(mask_weights)
        class_weight = cls_scores.new_tensor(self.class_weight)
        weight_sum = class_weight[labels].sum()
        loss_cls = self.loss_cls(cls_scores.flatten(0, 1), labels, label_weights,
                                 avg_factor=weight_sum)
        loss_queries = self.loss_queries_weight * mask_text_contrastive_loss(
            text_scores.flatten(0, 1), labels, class_weight, self.query_loss_type)

        mask_preds = mask_preds[mask_weights > 0]
        if mask_targets.shape[0] == 0:  # no ground truth in the batch (the release fails here)
            zero = mask_preds.sum()
            return dict(loss_cls=loss_cls, loss_queries=loss_queries, loss_mask=zero,
                        loss_dice=zero)
        factor = weight_sum if self.mask_avg_factor == 'class_weight' else num_matched
        num_total_masks = max(reduce_mean(cls_scores.new_tensor([float(factor)])), 1)
        with torch.no_grad():
            points = get_uncertain_point_coords_with_randomness(
                mask_preds.unsqueeze(1), None, self.num_points, self.oversample_ratio,
                self.importance_sample_ratio)
            point_targets = point_sample(mask_targets.unsqueeze(1).float(), points).squeeze(1)
        point_preds = point_sample(mask_preds.unsqueeze(1), points).squeeze(1)
        loss_dice = self.loss_dice(point_preds, point_targets, avg_factor=num_total_masks)
        loss_mask = self.loss_mask(point_preds.reshape(-1), point_targets.reshape(-1),
                                   avg_factor=num_total_masks * self.num_points)
        return dict(loss_cls=loss_cls, loss_queries=loss_queries, loss_mask=loss_mask,
                    loss_dice=loss_dice)

    def predict(self, dense: DenseOutput, text: Tensor) -> Tensor:
        """(B, K, H, W) class probabilities of Mask2Former's semantic inference at the window's
        size: masks upsampled to the input, then Σ_n softmax(class_n)[:K] · σ(mask_n)."""
        cls_list, _, mask_list = self(dense.levels, text)
        masks = F.interpolate(mask_list[-1], size=dense.images.shape[-2:], mode='bilinear',
                              align_corners=False)
        cls_probs = F.softmax(cls_list[-1], dim=-1)[..., :-1]
        return torch.einsum('bqc,bqhw->bchw', cls_probs, masks.sigmoid())
