"""PixelCLIP: CLIP's dense features trained from class-agnostic masks, without semantic labels.

Shin et al., "Towards Open-Vocabulary Semantic Segmentation Without Semantic Labels", NeurIPS
2024, https://arxiv.org/abs/2409.19846; cvlab-kaist/PixelCLIP@42f5c9c (``pixelclip/pixelclip.py``,
``modeling/transformer/pixelclip_predictor.py``, ``third_party/model.py``; reference notes §4).
Against plain CLIP: the image tower is fine-tuned so that masks (SA-1B, SAM, DINO k-means) become
coherent in its dense features; the "classes" are M learned names whose embeddings cluster the
masks online (a mean-teacher picks each mask's cluster, the student predicts the merged masks):

    c_m = TextEnc("A photo of a {n_m1} {n_m2} {n_m3} {n_m4} in the scene")   learned names (§3.2)
    f_n = mean of teacher features F_t (weak view) inside mask n               mask pooling
    Q = SinkhornKnopp(softmax(eps cos(f_n, c_m)))   3 iterations, equal mass  online clustering
    Y_m = clamp(sum_{n: argmax_m Q_nm = m} mask_n, 0, 1)                       merged targets
    S_m = ConvHead(cos(F_s, c_m)),  F_s the student on a strong view            per cluster
    loss = BCE(S, Y) over pixels covered by some mask;  teacher <- 0.999 teacher + 0.001 student

At test time the head is unused: cos(F_s, class texts) at the student's resolution (§4.3).
"""
from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from mmengine.dist import all_reduce
from mmengine.model import BaseModule
from torch import Tensor, nn

from denseclip.engine.checkpoint import exclude_from_state_dict
from denseclip.models import mask_sources  # noqa: F401  (registers DINOKMeansMasks)
from denseclip.models.backbones import DenseOutput
from denseclip.models.segmentors import OpenVocabEncoderDecoder
from denseclip.models.text import OpenCLIPTextEncoder
from denseclip.registry import MODELS

from .base import OpenVocabHead

__all__ = ['sinkhorn_knopp', 'ema_update', 'cluster_targets', 'set_trainable_visual',
           'LearnedClassNames', 'ConvHead', 'PixelCLIPHead', 'StrongView', 'PixelCLIPSegmentor']

VisualFinetune = Literal['attention', 'full']


# ----------------------------------------------------------------------------- the math
@torch.no_grad()
def sinkhorn_knopp(logits: Tensor, num_iters: int = 3) -> Tensor:
    """SwAV's Sinkhorn-Knopp on softmax(logits), across all processes (pixelclip.py
    ``distributed_sinkhorn``, after SwAV main_swav.py@06b1b7c).

    Q = softmax(logits) is scaled so that every cluster (column) holds mass 1/M of the global
    batch and every sample (row) mass 1/N, alternately, ``num_iters`` times, ending with rows;
    sums over samples are all-reduced (mmengine.dist: a no-op outside torch.distributed), so
    the clusters are balanced over the masks of every process together.

    Args:
        logits: (N, M) this process's samples against M clusters (N may be 0).

    Returns:
        (N, M) soft assignments; each row sums to 1.
    """
    Q = logits.float().softmax(dim=-1).T  # (M, N)
    M = Q.shape[0]
    total = Q.sum()
    all_reduce(total)
    if total == 0:  # no sample anywhere
        return Q.T
    Q /= total
    for _ in range(num_iters):
        rows = Q.sum(dim=1, keepdim=True)  # (M, 1) mass per cluster
        all_reduce(rows)
        Q /= rows
        Q /= M
        Q /= Q.sum(dim=0, keepdim=True)  # (1, N) mass per sample, local
        Q /= total
    return (Q * total).T  # rows sum to 1


@torch.no_grad()
def ema_update(student: nn.Module, teacher: nn.Module, momentum: float) -> None:
    """teacher <- momentum · teacher + (1 - momentum) · student, parameter by parameter
    (pixelclip.py ``momentum_update``, every parameter of the image tower)."""
    s_params, t_params = dict(student.named_parameters()), dict(teacher.named_parameters())
    if s_params.keys() != t_params.keys():
        diff = sorted(set(s_params) ^ set(t_params))[:10]
        raise KeyError(f'ema_update: student and teacher parameters differ: {diff}')
    for name, param in t_params.items():
        param.mul_(momentum).add_(s_params[name].detach().to(param.dtype), alpha=1 - momentum)


def cluster_targets(masks: Sequence[Tensor], teacher: Tensor, clusters: Tensor, eps: float,
                    size: tuple[int, int], num_iters: int = 3) -> Tensor:
    """Merged mask targets of online clustering (pixelclip.py ``prepare_clusters``).

    Args:
        masks: B tensors (N_i, H, W), the masks of each image (any dtype, nonzero = inside).
        teacher: (B, E, h, w) the teacher's dense features.
        clusters: (M, D = E) the learned class-name embeddings.
        eps: the logit scale of mask-cluster cosines (ViT 100, ConvNeXt 1).
        size: the mask resolution (released 256 x 256).

    Returns:
        (B, M, *size) float in {0, 1}: Y_m, the union of the masks assigned to cluster m.
    """
    B, M = teacher.shape[0], clusters.shape[0]
    if len(masks) != B:
        raise ValueError(f'cluster_targets: {len(masks)} mask sets for {B} images')
    feats = F.interpolate(teacher.float(), size=size, mode='bilinear', align_corners=False)
    centres = F.normalize(clusters.detach().float(), dim=-1)  # (M, D)
    logits, kept = [], []
    for i, image_masks in enumerate(masks):
        small = F.interpolate(image_masks[None].float(), size=size, mode='nearest')[0]
        small = small[small.sum(dim=(1, 2)) > 1]  # (n, S, S) masks lost in downsizing dropped
        kept.append(small)
        weights = small / small.sum(dim=(1, 2), keepdim=True).clamp(min=1)
        pooled = torch.einsum('chw,nhw->nc', feats[i], weights)  # (n, E)
        logits.append(eps * F.normalize(pooled, dim=-1) @ centres.T)  # (n, M)
    assignment = sinkhorn_knopp(torch.cat(logits), num_iters).argmax(dim=1)  # (sum n,)
    targets = feats.new_zeros(B, M, *size)
    start = 0
    for i, small in enumerate(kept):
        targets[i].index_add_(0, assignment[start:start + len(small)], small)
        start += len(small)
    return targets.clamp_(0, 1)


def set_trainable_visual(visual: nn.Module, mode: VisualFinetune) -> None:
    """The released ``CLIP_FINETUNE`` choices for the image tower (pixelclip.py ``__init__``):
    ``'attention'``: every parameter whose name contains "attn" (in_proj_weight, in_proj_bias,
    out_proj) and the positional embedding (ViT-B/16); ``'full'``: all of it (ConvNeXt-B)."""
    if mode == 'full':
        visual.requires_grad_(True)
        return
    if mode != 'attention':
        raise ValueError(f"set_trainable_visual: mode={mode!r}; expected 'attention' or 'full'")
    names = [n for n, _ in visual.named_parameters() if 'attn' in n or 'positional' in n]
    if not names:
        raise TypeError(f"set_trainable_visual: {type(visual).__name__} has no attention or "
                        "positional-embedding parameters; use mode='full'")
    for name, param in visual.named_parameters():
        param.requires_grad_('attn' in name or 'positional' in name)


# ----------------------------------------------------------------------------- modules
@MODELS.register_module()
class LearnedClassNames(BaseModule):
    """M learned class names of n token embeddings each, inside a fixed template, through the
    (frozen) text encoder: the clusters of PixelCLIP (``PixelCLIPPredictor.prompt_tokens``).

    Args:
        text_encoder: the text tower (its tokenizer and token embedding set the template and
            the initial names; it is not kept). PixelCLIPSegmentor passes its own.
        num_names: M (released ``NUM_CLASSES`` 64).
        name_length: n tokens per name (``PROMPT_LENGTH`` 4).
        template: with one ``{}`` where the name's n tokens go.
        seed: the initial names are the embeddings of ids drawn uniformly from
            [0, vocab - 10) by ``torch.randint`` after ``torch.manual_seed(seed)`` (released 0).
    """

    def __init__(self, text_encoder: OpenCLIPTextEncoder | None = None, num_names: int = 64,
                 name_length: int = 4, template: str = 'A photo of a {} in the scene',
                 seed: int = 0, init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if text_encoder is None:
            raise ValueError('LearnedClassNames: text_encoder is needed (PixelCLIPSegmentor '
                             'passes its own)')
        if template.count('{}') != 1 or min(num_names, name_length) < 1:
            raise ValueError(f'LearnedClassNames: template={template!r} needs exactly one {{}}; '
                             f'num_names={num_names}, name_length={name_length} must be >= 1')
        placeholder = int(text_encoder.tokenize(['{}'])[0, 1])  # BPE id of '{}'
        text = template.replace('{}', ' '.join(['{}'] * name_length))
        tokens = text_encoder.tokenize([text])[0]  # (77,)
        eot = int(text_encoder.eot_index(tokens[None])[0])
        slots = (tokens[:eot] == placeholder).nonzero().flatten()
        if len(slots) != name_length:
            raise ValueError(f'LearnedClassNames: {text!r} tokenises to {len(slots)} name '
                             f'slots, expected {name_length}')
        self.register_buffer('tokens', tokens[:eot + 1].clone(), persistent=False)  # (L,)
        self.register_buffer('slots', slots.clone(), persistent=False)  # (n,)
        vocab = text_encoder.token_embedding.num_embeddings
        ids = torch.randint(vocab - 10, (num_names, name_length),
                            generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            init = text_encoder.token_embedding(ids.to(text_encoder.device))  # (M, n, W)
        self.names = nn.Parameter(init.detach().clone().float())

    def forward(self, text_encoder: OpenCLIPTextEncoder) -> Tensor:
        """(M, D) unnormalised embeddings of the M names in the template, with gradients."""
        M = self.names.shape[0]
        x = text_encoder.token_embedding(self.tokens)[None].repeat(M, 1, 1)  # (M, L, W)
        x[:, self.slots] = self.names.to(x.dtype)
        eot = torch.full((M,), len(self.tokens) - 1, device=x.device)
        return text_encoder(x, eot)

    def extra_repr(self) -> str:
        return f'num_names={self.names.shape[0]}, name_length={self.names.shape[1]}'


class DoubleConv(nn.Sequential):
    """(Conv3x3 -> GroupNorm(C/16) -> ReLU) x 2, no conv bias (pixelclip.py ``DoubleConv``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        # released attribute name: DoubleConv.double_conv
        self.double_conv = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.GroupNorm(channels // 16, channels), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.GroupNorm(channels // 16, channels), nn.ReLU(inplace=True))


@MODELS.register_module()
class ConvHead(nn.Module):
    """PixelCLIP's mask decoder on one cosine map: Conv3x3(1 -> c0), then twice a 2x transposed
    conv and a :class:`DoubleConv`, then Conv3x3(-> 1): (N, 1, h, w) -> (N, 1, 4h, 4w).

    Args:
        channels: (c0, c1, c2), released (64, 64, 32); each a multiple of 16 (GroupNorm).
    """

    def __init__(self, channels: Sequence[int] = (64, 64, 32)) -> None:
        super().__init__()
        c0, c1, c2 = channels
        if any(c % 16 or c < 16 for c in (c1, c2)):
            raise ValueError(f'ConvHead: channels={tuple(channels)}; the last two must be '
                             'multiples of 16 (GroupNorm groups of 16 channels)')
        self.conv0 = nn.Conv2d(1, c0, 3, padding=1)
        self.up1 = nn.ConvTranspose2d(c0, c1, 2, stride=2)
        self.conv1 = DoubleConv(c1)
        self.up2 = nn.ConvTranspose2d(c1, c2, 2, stride=2)
        self.conv2 = DoubleConv(c2)
        self.proj = nn.Conv2d(c2, 1, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(self.up1(self.conv0(x)))
        return self.proj(self.conv2(self.up2(x)))


@MODELS.register_module()
class PixelCLIPHead(OpenVocabHead):
    """Online clustering, the ConvHead and BCE in training; plain cosine at test time.

    Args:
        conv_head: a :class:`ConvHead` config.
        eps: logit scale of mask-cluster cosines (``MODEL.EPS``: ViT 100, ConvNeXt 1).
        mask_size: the targets' and predictions' resolution (``MASK_RESOLUTION`` 256 x 256).
        sinkhorn_iters: Sinkhorn-Knopp iterations (3).
        test_size: dense features are upsampled (bilinear) to this before the cosine at test
            time (released: 64 x 64); None keeps the backbone's grid.
    """

    def __init__(self, conv_head: dict | None = None, eps: float = 100.0,
                 mask_size: Sequence[int] = (256, 256), sinkhorn_iters: int = 3,
                 test_size: Sequence[int] | None = (64, 64), init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.conv_head = MODELS.build(conv_head or dict(type='ConvHead'))
        self.eps = eps
        self.mask_size = tuple(mask_size)
        self.sinkhorn_iters = sinkhorn_iters
        self.test_size = None if test_size is None else tuple(test_size)

    def mask_logits(self, feats: Tensor, clusters: Tensor) -> Tensor:
        """(B, M, S, S) ConvHead logits of S_m = cos(F_s, c_m), per cluster map."""
        B, _, h, w = feats.shape
        cost = torch.einsum('md,bdhw->bmhw', F.normalize(clusters, dim=-1),
                            F.normalize(feats, dim=1))  # (B, M, h, w)
        out = self.conv_head(cost.reshape(-1, 1, h, w))  # (B*M, 1, 4h, 4w)
        out = F.interpolate(out, size=self.mask_size, mode='bilinear', align_corners=False)
        return out.view(B, -1, *self.mask_size)  # (B, M, S, S)

    def loss(self, dense: DenseOutput, text: Tensor, masks: Sequence[Tensor],
             teacher: Tensor) -> dict[str, Tensor]:
        """BCE of the ConvHead's cluster maps against the merged masks.

        Args:
            dense: the student's output on the strong view.
            text: (M, D) learned class-name embeddings (the clusters).
            masks: B tensors (N_i, H, W) of class-agnostic masks.
            teacher: (B, E, h, w) teacher features of the weak view.
        """
        targets = cluster_targets(masks, teacher, text, self.eps, self.mask_size,
                                  self.sinkhorn_iters)  # (B, M, S, S)
        logits = self.mask_logits(dense.feats, text)
        valid = targets.sum(dim=1) > 0  # (B, S, S) pixels some mask covers
        if not valid.any():
            return dict(loss_masks=logits.sum() * 0.0)
        pred = logits.permute(0, 2, 3, 1)[valid]  # (P, M)
        gold = targets.permute(0, 2, 3, 1)[valid]
        return dict(loss_masks=F.binary_cross_entropy_with_logits(pred.float(), gold))

    def predict(self, dense: DenseOutput, text: Tensor) -> Tensor:
        """(B, Q, h', w') cosines of the dense features with the (Q, T, D) class texts,
        averaged over templates as released (normalise, mean over T, normalise)."""
        feats = dense.feats
        if self.test_size is not None:
            feats = F.interpolate(feats, size=self.test_size, mode='bilinear',
                                  align_corners=False)
        classes = F.normalize(F.normalize(text.float(), dim=-1).mean(dim=1), dim=-1)  # (Q, D)
        return torch.einsum('qd,bdhw->bqhw', classes, F.normalize(feats.float(), dim=1))


@MODELS.register_module()
class StrongView(nn.Module):
    """The student's strong view (sa1b_dataset_mapper.py, ``STRONG_AUG``): colour jitter
    (0.5, 0.5, 0.5, 0.25) with p 0.8, grayscale with p 0.2, Gaussian blur (sigma in [0.1, 2])
    with p 0.5, and a black cutout of 10-50% of each side, centred inside the image.

    Deviation: applied per image on the device to the batch (after the weak view's mmseg
    augmentation) instead of in the PIL data mapper; the same distributions.
    """

    def __init__(self, jitter_prob: float = 0.8, gray_prob: float = 0.2,
                 blur_prob: float = 0.5, cutout_range: tuple[float, float] = (0.1, 0.5)) -> None:
        super().__init__()
        from torchvision import transforms as T

        self.jitter = T.ColorJitter(0.5, 0.5, 0.5, 0.25)
        self.jitter_prob, self.gray_prob, self.blur_prob = jitter_prob, gray_prob, blur_prob
        self.cutout_range = cutout_range

    @torch.no_grad()
    def forward(self, pixels: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 3, H, W) RGB in [0, 255] -> (strong pixels, (B, H, W) bool cutout boxes)."""
        from torchvision.transforms import functional as TF

        B, _, H, W = pixels.shape
        out = (pixels.float() / 255).clamp(0, 1)
        boxes = torch.zeros(B, H, W, dtype=torch.bool, device=pixels.device)
        views = []
        for i in range(B):
            x = out[i]
            if torch.rand(()) < self.jitter_prob:
                x = self.jitter(x)
            if torch.rand(()) < self.gray_prob:
                x = TF.rgb_to_grayscale(x, num_output_channels=3)
            if torch.rand(()) < self.blur_prob:
                sigma = float(torch.empty(()).uniform_(0.1, 2.0))
                x = TF.gaussian_blur(x, 2 * math.ceil(3 * sigma) + 1, sigma)
            low, high = self.cutout_range
            ch = int(H * float(torch.empty(()).uniform_(low, high)))
            cw = int(W * float(torch.empty(()).uniform_(low, high)))
            # cutout_inside: the centre keeps the whole box inside the image
            cy = int(torch.randint(ch // 2, max(ch // 2, H + (ch % 2 == 0) - ch // 2) + 1, ()))
            cx = int(torch.randint(cw // 2, max(cw // 2, W + (cw % 2 == 0) - cw // 2) + 1, ()))
            y0, x0 = max(0, cy - ch // 2), max(0, cx - cw // 2)
            y1, x1 = min(H, cy - ch // 2 + ch), min(W, cx - cw // 2 + cw)
            x = x.clone()
            x[:, y0:y1, x0:x1] = 0
            boxes[i, y0:y1, x0:x1] = True
            views.append(x)
        return torch.stack(views) * 255, boxes


# ----------------------------------------------------------------------------- segmentor
@MODELS.register_module()
class PixelCLIPSegmentor(OpenVocabEncoderDecoder):
    """PixelCLIP's training step around :class:`OpenVocabEncoderDecoder` (whose inference,
    windows and post-processing it keeps: the class texts come from ``prompt``, the scores from
    :meth:`PixelCLIPHead.predict`).

    loss(inputs = weak views, data_samples with ``gt_masks`` unless ``mask_source``)::

        masks <- data_samples[i].gt_masks | mask_source(weak)            (DINO k-means)
        strong, cutout <- strong_view(weak);  masks <- masks & ~cutout
        teacher <- EMA(teacher, backbone);   F_t = teacher(weak)         (no grad)
        F_s = backbone(strong);  c = cluster_prompt(text_encoder)        (M, D)
        decode_head.loss(F_s, c, masks, F_t)

    Args:
        cluster_prompt: a :class:`LearnedClassNames` config (the text encoder is passed in).
        visual_finetune: which image-tower weights train, :func:`set_trainable_visual`
            (``'attention'`` ViT, ``'full'`` ConvNeXt); the text tower stays frozen.
        ema_momentum: the teacher's momentum (0.999).
        strong_view: a :class:`StrongView` config; None: the student sees the weak view.
        mask_source: a module making masks from the CLIP-normalised weak views
            (:class:`~denseclip.models.mask_sources.DINOKMeansMasks`); None: masks come from
            the pipeline (``gt_masks``).
        clip_resolution: (h, w) every image is resized to (bilinear) before the student and
            the teacher, in training and at test time (``CLIP_RESOLUTION``: ViT 320 x 320,
            ConvNeXt 640 x 640); None: as given.
        **kwargs: :class:`OpenVocabEncoderDecoder`'s (``vocabulary`` is the test classes).

    The mask source is frozen and rebuilt from its config: it is left out of ``state_dict``.
    The teacher is kept (a resumed run continues its EMA; the released checkpoints hold it).
    """

    def __init__(self, cluster_prompt: dict, visual_finetune: VisualFinetune = 'attention',
                 ema_momentum: float = 0.999, strong_view: dict | None = None,
                 mask_source: dict | None = None,
                 clip_resolution: Sequence[int] | None = None, **kwargs) -> None:
        if kwargs.get('clip_finetune') is not None:
            raise ValueError('PixelCLIPSegmentor: clip_finetune trains both towers; PixelCLIP '
                             'trains the image tower only: set visual_finetune')
        super().__init__(**kwargs)
        if not 0 <= ema_momentum <= 1:
            raise ValueError(f'PixelCLIPSegmentor: ema_momentum={ema_momentum}; expected [0, 1]')
        self.text_encoder.requires_grad_(False)
        self.backbone.requires_grad_(False)
        set_trainable_visual(self.backbone.visual, visual_finetune)
        self.cluster_prompt = MODELS.build(dict(cluster_prompt, text_encoder=self.text_encoder))
        self.ema_momentum = ema_momentum
        self.clip_resolution = None if clip_resolution is None else tuple(clip_resolution)
        self.strong_view = MODELS.build(strong_view) if strong_view is not None else None
        self.mask_source = MODELS.build(mask_source) if mask_source is not None else None
        if self.mask_source is not None:
            self.mask_source.requires_grad_(False)
            exclude_from_state_dict(self, ('mask_source.',))
        # The teacher starts as the student (a copy of the image tower, no text tower).
        clip = self.backbone.__dict__.pop('clip', None)
        self.teacher = copy.deepcopy(self.backbone)
        if clip is not None:
            object.__setattr__(self.backbone, 'clip', clip)
        self.teacher.requires_grad_(False)

    def train(self, mode: bool = True) -> PixelCLIPSegmentor:
        super().train(mode)
        self.teacher.eval()
        if self.mask_source is not None:
            self.mask_source.eval()
        return self

    def normalise(self, pixels: Tensor) -> Tensor:
        """Inverse of :meth:`pixels`: 0-255 RGB -> the data preprocessor's normalisation."""
        pre = self.data_preprocessor
        shape = (1, 3, 1, 1)
        return (pixels - pre.mean.view(shape).to(pixels.device)) / pre.std.view(shape).to(
            pixels.device)

    def resize(self, images: Tensor) -> Tensor:
        """Images at ``clip_resolution`` (pixelclip.py: ``F.interpolate`` bilinear)."""
        if self.clip_resolution is None or tuple(images.shape[-2:]) == self.clip_resolution:
            return images
        return F.interpolate(images, size=self.clip_resolution, mode='bilinear',
                             align_corners=False)

    def score_windows(self, crops: Tensor, text: Tensor) -> Tensor:
        """The head's scores of the windows (the whole image, released) at
        ``clip_resolution``."""
        return super().score_windows(self.resize(crops), text)

    def batch_masks(self, inputs: Tensor, data_samples) -> list[Tensor]:
        if self.mask_source is not None:
            return self.mask_source(inputs)
        missing = [i for i, s in enumerate(data_samples or []) if 'gt_masks' not in s]
        if not data_samples or missing:
            raise KeyError('PixelCLIPSegmentor: samples without gt_masks (first: '
                           f'{missing[:1]}); put a mask source in the pipeline (LoadSA1BMasks, '
                           'GenerateMasks, SegMapToMasks + PackMaskInputs) or set mask_source')
        H, W = inputs.shape[-2:]
        masks = []
        for i, s in enumerate(data_samples):
            m = s.gt_masks.to(inputs.device)
            if m.ndim != 3 or m.shape[-2] > H or m.shape[-1] > W:
                raise ValueError(f'PixelCLIPSegmentor: sample {i} has gt_masks '
                                 f'{tuple(m.shape)}; expected (N, h, w) with h <= {H}, w <= {W}'
                                 ' (its padded image)')
            # the data preprocessor pads images bottom / right: no mask covers the padding
            masks.append(F.pad(m, (0, W - m.shape[-1], 0, H - m.shape[-2])))
        return masks

    def loss(self, inputs: Tensor, data_samples=None) -> dict[str, Tensor]:
        """The mask loss of a batch of weak views (see the class docstring)."""
        masks = self.batch_masks(inputs, data_samples)
        student_in = inputs
        if self.strong_view is not None:
            strong, cutout = self.strong_view(self.pixels(inputs))
            student_in = self.normalise(strong).to(inputs.dtype)
            # released: gt_masks & ~cutout
            masks = [m.bool() & ~box for m, box in zip(masks, cutout)]
        with torch.no_grad():
            ema_update(self.backbone, self.teacher, self.ema_momentum)
            teacher = self.teacher.forward_dense(self.resize(inputs)).feats  # (B, E, h, w)
        clusters = self.cluster_prompt(self.text_encoder)  # (M, D)
        dense = self.backbone.forward_dense(self.resize(student_in))
        return self.decode_head.loss(dense, clusters, masks, teacher)

