"""Adapting CLIP for phrase localization without further training.

Li, Shakhnarovich, Yeh, 2022, arXiv 2204.03647; official code pals-ttic/adapting-CLIP@d2026f3.
A phrase is localised by a heat map of its cosine with CLIP features and the box that holds
most of the heat for the least area (:mod:`denseclip.models.box_search`). Against plain CLIP
the features change twice: a ViT runs at half its patch stride and scores *region tokens*
(copies of [CLS] that attend only to the patches of one SLIC superpixel), and a ResNet turns
its strides into dilations so that the attention pool's value path gives a stride-1 map.

Data path (``PhraseGroundingModel.localize``)::

    image -> resize to 224 x 224 (aspect squashed) ---------------------------------.
      ViT:    SLIC at n_segments 100..600 -> masks on the stride-p/2 grid -> region tokens
              -> exp(cos/T) painted into each superpixel, mean over runs, min-max
      ResNet: dilated stride-1 layer4 -> c_proj(v_proj) -> exp(cos/T) per pixel
      dense:  any backbone's encode_dense (MaskCLIP...) upsampled -> exp(cos/T)
    -> box search (alpha) at 224 -> box scaled back to the image
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement
from PIL import Image
from skimage.segmentation import slic
from torch import Tensor, nn

from denseclip.clip import resample_pos_embed
from denseclip.models.backbones.clip_resnet import CLIPResNet, attnpool_values
from denseclip.models.backbones.clip_vit import CLIPViT
from denseclip.models.box_search import box_search
from denseclip.models.dense.base import NUM_PREFIX_TOKENS, block_qkv, merge_heads
from denseclip.models.segmentors import CLIP_MEAN, CLIP_STD
from denseclip.models.text.encoder import OpenCLIPTextEncoder
from denseclip.registry import MODELS

__all__ = ['region_token_update', 'region_token_embeddings', 'dense_stem', 'slic_regions',
           'paint_heatmap', 'dilated_resnet_features', 'RegionTokenHeatmap', 'DenseHeatmap',
           'PhraseGroundingModel', 'PhraseOutput']

OUTSIDE = -100.0  # the released additive mask (spatial_vit.py@d2026f3 masks_to_attn_map)


# ----------------------------------------------------------------------------- ViT: region tokens
def region_token_update(block: nn.Module, patches: Tensor, regions: Tensor,
                        outside: Tensor) -> Tensor:
    """One block's update of the region tokens (spatial_vit.py@d2026f3 ``forward``).

    Each region token g_m is a query over the keys and values of [patches; g_1..g_M] after the
    block's ln_1, with an additive -100 on the patches outside region m and on every other
    region token; then g <- g + Attn, g <- g + MLP(LN2(g)). The other region tokens' terms
    are exp(-100)-weighted, so they are dropped here and each token attends to the patches and
    itself: the same softmax without the (M, M) block (checked against the explicit masked
    attention in tests/test_grounding).

    Args:
        block: an open_clip ``ResidualAttentionBlock``.
        patches: (B, N, D) patch tokens entering the block.
        regions: (B, M, D) region tokens entering the block.
        outside: (M, N) bool, True where the patch lies outside the token's region.

    Returns:
        (B, M, D) region tokens leaving the block.
    """
    N = patches.shape[1]
    q, k, v = block_qkv(block, torch.cat([patches, regions], dim=1))  # (B, nh, N+M, hd) each
    qg = q[:, :, N:]  # (B, nh, M, hd)
    scale = q.shape[-1] ** -0.5
    to_patches = qg @ k[:, :, :N].transpose(-2, -1) * scale  # (B, nh, M, N)
    to_patches = to_patches + outside.to(q.dtype) * OUTSIDE
    to_self = (qg * k[:, :, N:]).sum(-1, keepdim=True) * scale  # (B, nh, M, 1)
    attn = torch.cat([to_patches, to_self], dim=-1).softmax(-1)  # (B, nh, M, N+1)
    out = attn[..., :N] @ v[:, :, :N] + attn[..., N:] * v[:, :, N:]  # (B, nh, M, hd)
    g = regions + block.ls_1(block.attn.out_proj(merge_heads(out)))  # (B, M, D)
    return g + block.ls_2(block.mlp(block.ln_2(g)))


def dense_stem(vit: CLIPViT, images: Tensor, upsample: int = 2) -> tuple[Tensor, tuple[int, int]]:
    """Patch embedding at stride p/``upsample``, [CLS], position embedding, ln_pre.

    As spatial_vit.py@d2026f3: conv1's stride becomes p/upsample with padding (p-1)//2, and
    the position grid is resampled bilinearly (``align_corners=False``) to the new grid, which
    is the pretrained grid times ``upsample`` at the model's own input size.

    Args:
        vit: the CLIPViT backbone.
        images: (B, 3, H, W) CLIP-normalised.
        upsample: token density factor (a power of two dividing the patch size).

    Returns:
        tokens (B, 1+N, D) and the grid (h, w).
    """
    if vit.family != 'openclip':
        raise TypeError(f"dense_stem: region tokens need open_clip's ViT stem (conv1, [CLS]); "
                        f'this backbone is {vit.family!r}')
    p = vit.patch_size
    if upsample < 1 or p % upsample:
        raise ValueError(f'dense_stem: upsample={upsample} must divide the patch size {p}')
    visual = vit.visual
    conv = visual.conv1
    x = F.conv2d(images.to(conv.weight.dtype), conv.weight, conv.bias, stride=p // upsample,
                 padding=(p - 1) // 2)  # (B, D, h, w)
    grid = tuple(x.shape[-2:])
    x = x.flatten(2).transpose(1, 2)  # (B, N, D)
    cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)  # (B, 1, D)
    pos = resample_pos_embed(visual.positional_embedding, grid, old_grid=visual.grid_size,
                             num_prefix_tokens=NUM_PREFIX_TOKENS, mode='bilinear')
    x = torch.cat([cls, x], dim=1) + pos.to(x.dtype)  # (B, 1+N, D)
    return visual.ln_pre(x), grid


def region_token_embeddings(vit: CLIPViT, images: Tensor, regions: Tensor,
                            upsample: int = 2) -> Tensor:
    """Joint-space embeddings of region tokens: every block, from [CLS] (start_block=0).

    Args:
        vit: the CLIPViT backbone.
        images: (1, 3, H, W) CLIP-normalised.
        regions: (R, H, W) int64 region ids, ids 0..M-1 over all R label maps (each map a
            partition of the image; :func:`slic_regions`).
        upsample: token density factor of :func:`dense_stem`.

    Returns:
        (M, E) unnormalised embeddings, ln_post and proj applied.
    """
    x, grid = dense_stem(vit, images, upsample)
    M = int(regions.max()) + 1
    # Nearest to the grid, as the released F.interpolate(mode='nearest') of the masks.
    on_grid = F.interpolate(regions[:, None].float(), size=grid,
                            mode='nearest')[:, 0].long().flatten(1)  # (R, N)
    run = torch.empty(M, dtype=torch.long, device=regions.device)
    for r in range(regions.shape[0]):  # which label map each region comes from
        run[regions[r].unique()] = r
    outside = on_grid[run] != torch.arange(M, device=regions.device)[:, None]  # (M, N)
    g = x[:, :NUM_PREFIX_TOKENS].expand(-1, M, -1)  # (1, M, D) copies of [CLS]
    for block in vit.blocks:
        g = region_token_update(block, x[:, NUM_PREFIX_TOKENS:], g, outside.to(x.device))
        x = block(x)
    return vit.visual.ln_post(g[0]) @ vit.visual.proj  # (M, E)


def slic_regions(rgb: np.ndarray, n_segments: Sequence[int], compactness: float = 50.0,
                 sigma: float = 0.0) -> Tensor:
    """SLIC superpixels at several scales (slic_vit.py@d2026f3 ``get_masks``).

    Args:
        rgb: (H, W, 3) uint8 picture.
        n_segments: one SLIC run per value.
        compactness, sigma: scikit-image ``slic`` settings.

    Returns:
        (R, H, W) int64 region ids, numbered 0..M-1 across all runs.
    """
    maps, offset = [], 0
    for n in n_segments:
        seg = slic(rgb.astype(np.float32) / 255.0, n_segments=int(n), compactness=compactness,
                   sigma=sigma)
        _, ids = np.unique(seg, return_inverse=True)  # 0..k-1 whatever start_label is
        maps.append(ids.reshape(seg.shape) + offset)
        offset += int(ids.max()) + 1
    return torch.from_numpy(np.stack(maps)).long()


def paint_heatmap(regions: Tensor, scores: Tensor, temperature: float) -> Tensor:
    """Mean over the label maps of exp(score/T) of each pixel's region, min-max normalised.

    Deviation: exp((s - max s)/T) instead of exp(s/T), which overflows float32 for cosines above
    88·T; the ratio is the same and min-max normalisation removes the factor.

    Args:
        regions: (R, H, W) int64 ids into ``scores``.
        scores: (M,) cosine of each region with the phrase.
        temperature: T.

    Returns:
        (H, W) float32 in [0, 1].
    """
    weights = ((scores.double() - scores.max()) / temperature).exp()  # (M,)
    heat = weights[regions].mean(0)  # (H, W)
    heat = (heat - heat.min()) / (heat.max() - heat.min() + 1e-8)  # the released 1e-8
    return heat.float()


@MODELS.register_module()
class RegionTokenHeatmap(nn.Module):
    """Heat map of region-token scores (slic_vit.py@d2026f3 ``SLICViT``) for a CLIPViT.

    Args:
        temperature: T of exp(cos/T): 0.01 for ViT-B/16, 0.02 for ViT-L/14 on Flickr30k
            (eval.py@d2026f3).
        n_segments: the SLIC runs, 100..600 step 50 (100..400 for B/32 in eval.py).
        compactness, sigma: SLIC settings (50, 0).
        upsample: token density, 2 (stride p/2).
    """

    def __init__(self, *, temperature: float = 0.01,
                 n_segments: Sequence[int] = tuple(range(100, 601, 50)),
                 compactness: float = 50.0, sigma: float = 0.0, upsample: int = 2) -> None:
        super().__init__()
        if not n_segments:
            raise ValueError('RegionTokenHeatmap: n_segments is empty; give the SLIC segment '
                             'counts, e.g. range(100, 601, 50)')
        self.temperature = temperature
        self.n_segments = tuple(int(n) for n in n_segments)
        self.compactness = compactness
        self.sigma = sigma
        self.upsample = upsample

    def forward(self, backbone: nn.Module, images: Tensor, rgb: np.ndarray,
                text: Tensor) -> tuple[Tensor, float]:
        """(S, S) heat map in [0, 1] and the best region cosine, for one image.

        Args:
            backbone: a :class:`CLIPViT`.
            images: (1, 3, S, S) CLIP-normalised.
            rgb: (S, S, 3) uint8, the same picture (for SLIC).
            text: (E,) L2-normalised phrase embedding.
        """
        if not isinstance(backbone, CLIPViT):
            raise TypeError(f'RegionTokenHeatmap needs a CLIPViT backbone, got '
                            f'{type(backbone).__name__}; use DenseHeatmap for ResNets')
        regions = slic_regions(rgb, self.n_segments, self.compactness, self.sigma)
        emb = region_token_embeddings(backbone, images, regions.to(images.device),
                                      self.upsample)  # (M, E)
        cos = F.normalize(emb.float(), dim=-1) @ text.float()  # (M,)
        heat = paint_heatmap(regions.to(cos.device), cos, self.temperature)
        return heat, float(cos.max().detach())


# ------------------------------------------------------------------------ ResNet: dilated stride 1
def _dilated_conv(conv: nn.Conv2d, x: Tensor, d: int) -> Tensor:
    """A stride-1 conv of the stride-s original, run on a lattice of spacing d (a trous)."""
    k = conv.kernel_size[0]
    return F.conv2d(x, conv.weight, conv.bias, padding=d * (k // 2), dilation=d)


def _dilated_avg2(x: Tensor, d: int) -> Tensor:
    """AvgPool2d(2) on a lattice of spacing d: mean of x[p], x[p+d] (zeros past the edge)."""
    x = F.pad(x, (0, d, 0, d))
    return (x[..., :-d, :-d] + x[..., d:, :-d] + x[..., :-d, d:] + x[..., d:, d:]) / 4


def _dilated_bottleneck(block: nn.Module, x: Tensor, d: int) -> Tensor:
    out = block.act1(block.bn1(block.conv1(x)))
    out = block.act2(block.bn2(_dilated_conv(block.conv2, out, d)))
    if block.stride > 1:
        out = _dilated_avg2(out, d)
    out = block.bn3(block.conv3(out))
    identity = x
    if block.downsample is not None:
        pooled = _dilated_avg2(x, d) if block.stride > 1 else x
        identity = block.downsample[2](block.downsample[1](pooled))  # conv "0", bn "1"
    return block.act3(out + identity)


def dilated_resnet_features(visual: nn.Module, images: Tensor) -> tuple[Tensor, float]:
    """CLIP ModifiedResNet layer4 at stride 1: every stride turned into a dilation.

    spatial_clip/resnet/dilated_model.py@d2026f3 does the same with zero-padded-free average
    filters; here each 2x2 average reads x[p] and x[p+d] (right-padded with zeros), so the
    output on the 32-pixel lattice equals the strided network's exactly
    (``out[..., ::32, ::32] == layer4``, tests/test_grounding).

    Args:
        visual: an open_clip ``ModifiedResNet``.
        images: (B, 3, H, W) CLIP-normalised.

    Returns:
        (B, C, H, W) layer4 features, and the offset in pixels of each output's receptive-field
        centre from its position (15 for CLIP ResNets: half of the four average strides).
    """
    x = images.to(visual.conv1.weight.dtype)
    x = visual.act1(visual.bn1(_dilated_conv(visual.conv1, x, 1)))
    x = visual.act2(visual.bn2(_dilated_conv(visual.conv2, x, 2)))
    x = visual.act3(visual.bn3(_dilated_conv(visual.conv3, x, 2)))
    x, d, shift = _dilated_avg2(x, 2), 4, 1.0
    for layer in (visual.layer1, visual.layer2, visual.layer3, visual.layer4):
        for block in layer:
            x = _dilated_bottleneck(block, x, d)
            if block.stride > 1:
                shift += d / 2
                d *= block.stride
    return x, shift


@MODELS.register_module()
class DenseHeatmap(nn.Module):
    """exp(cos/T) of dense features upsampled to the input (resnet_high_res.py@d2026f3).

    With a :class:`CLIPResNet` and ``stride_one`` it is the paper's ResNet path: the dilated
    layer4 on the image padded by ``pad`` pixels, cropped back around each receptive field's
    centre, then MaskCLIP's value path. Otherwise it is the plain-dense baseline: the
    backbone's ``encode_dense`` (MaskCLIP, SCLIP, ...) upsampled bilinearly to the input, the
    released ``'denseclip'`` model. The map is not min-max normalised, as released.

    Args:
        temperature: T: 0.03 (Flickr30k) or 0.01 (VG) for the ResNets (eval.py@d2026f3).
        stride_one: dilate a CLIPResNet to stride 1.
        pad: zero padding of the normalised image around the dilated ResNet (64, released).
    """

    def __init__(self, *, temperature: float = 0.03, stride_one: bool = False,
                 pad: int = 64) -> None:
        super().__init__()
        self.temperature = temperature
        self.stride_one = stride_one
        self.pad = pad

    def features(self, backbone: nn.Module, images: Tensor) -> Tensor:
        """(1, E, S, S) joint-space features at the input's resolution."""
        if self.stride_one:
            if not isinstance(backbone, CLIPResNet):
                raise TypeError(f'DenseHeatmap(stride_one=True) dilates a CLIPResNet; got '
                                f'{type(backbone).__name__}')
            H, W = images.shape[-2:]
            p = self.pad
            x, shift = dilated_resnet_features(backbone.visual, F.pad(images, (p, p, p, p)))
            top = p - int(shift)
            x = x[..., top:top + H, top:top + W]  # (1, C, H, W)
            return attnpool_values(backbone.visual.attnpool, x)
        feats = backbone.encode_dense(images)  # (1, E, h, w)
        return F.interpolate(feats.float(), size=images.shape[-2:], mode='bilinear',
                             align_corners=False)

    def forward(self, backbone: nn.Module, images: Tensor, rgb: np.ndarray,
                text: Tensor) -> tuple[Tensor, float]:
        """(S, S) heat map (its maximum is 1) and the best pixel cosine; see
        :meth:`RegionTokenHeatmap.forward` for the arguments."""
        feats = F.normalize(self.features(backbone, images)[0].float(), dim=0)  # (E, S, S)
        cos = torch.einsum('ehw,e->hw', feats, text.float())  # (S, S)
        # exp((cos - max)/T): the released exp(cos/T) up to a factor (no overflow), which
        # neither the box search (a mass fraction) nor the pointing game sees.
        return ((cos - cos.max()) / self.temperature).exp(), float(cos.max().detach())


# --------------------------------------------------------------------------------- the model
@dataclass
class PhraseOutput:
    """One localised phrase.

    Attributes:
        box: (4,) float ``(x1, y1, x2, y2)`` in image pixels.
        heatmap: (S, S) float32 heat map at the model's input size (S = 224).
        point: ``(x, y)`` image position of the heat map's maximum (pointing game).
        score: the best cosine between the phrase and a region (ViT) or a location.
        objective: the box's value of (heat fraction inside) - alpha * (area fraction).
    """

    box: np.ndarray
    heatmap: np.ndarray
    point: tuple[float, float]
    score: float
    objective: float


@MODELS.register_module()
class PhraseGroundingModel(BaseModel):
    """Phrase localization: heat map of a phrase, then box search (an mmengine model).

    ``tools/test.py`` feeds it samples of the grounding datasets
    (:mod:`denseclip.datasets.grounding`); :meth:`localize` is the one-image path of the
    Python API (:class:`denseclip.apis.PhraseLocalizer`).

    Args:
        backbone: a CLIPViT or CLIPResNet config; its CLIP's text tower encodes the phrase.
        heatmap: a :class:`RegionTokenHeatmap` or :class:`DenseHeatmap` config.
        alpha: area weight of the box search: 0.8 for ViT-B/16 on Flickr30k, 0.85 on VG
            (eval.py@d2026f3).
        input_size: side of the square the image is resized to (224, released).
        downsample: coarse stage of the box search at 1/downsample.
    """

    def __init__(self, backbone: dict, heatmap: dict, alpha: float = 0.8,
                 input_size: int = 224, downsample: int = 8,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.heatmap = MODELS.build(heatmap)
        self.text_encoder = OpenCLIPTextEncoder(clip=self.backbone.clip,
                                                source=self.backbone.source)
        self.alpha = alpha
        self.input_size = input_size
        self.downsample = downsample
        self.register_buffer('mean', torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    def encode_phrase(self, phrase: str) -> Tensor:
        """(E,) L2-normalised embedding of the raw phrase (no template, as released).

        Raises:
            ValueError: an empty phrase, or one longer than the text context (the message
                gives its length in tokens and the context's).
        """
        if not isinstance(phrase, str):
            raise TypeError(f'phrase: expected a str, got {type(phrase).__name__}')
        if not phrase.strip():
            raise ValueError('phrase is empty; give the words to localise, e.g. "the man in a '
                             'red shirt"')
        enc = self.text_encoder
        context = getattr(enc.tokenizer, 'context_length', None) or enc.context_length
        count = int(enc.eot_index(enc.tokenize([phrase], context_length=4096))[0]) + 1
        if count > context:
            raise ValueError(f'the phrase is {count} tokens long (start and end tokens '
                             f'included) but the text encoder\'s context holds {context}; '
                             f'shorten it: {phrase[:60]!r}...')
        emb = enc.encode_prompts([phrase], ['{}'])[0, 0]  # (E,)
        return F.normalize(emb.float(), dim=-1)

    @torch.no_grad()
    def localize(self, rgb: np.ndarray, phrase: str) -> PhraseOutput:
        """Localise ``phrase`` in one picture.

        Args:
            rgb: (H, W, 3) uint8 RGB picture, at least one patch (or 32 pixels) on each side.
            phrase: the text to localise.

        Returns:
            :class:`PhraseOutput` in the picture's pixels.
        """
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f'expected an (H, W, 3) RGB picture, got shape {rgb.shape}')
        H, W = rgb.shape[:2]
        least = getattr(self.backbone, 'patch_size', CLIPResNet.output_stride)
        if min(H, W) < least:
            raise ValueError(f'the picture is {W}x{H} pixels, smaller than one patch of the '
                             f'model ({least} pixels); give a picture of at least '
                             f'{least}x{least}')
        text = self.encode_phrase(phrase)
        S = self.input_size
        # The released PIL resize to 224 x 224 (bicubic, aspect squashed).
        small = np.array(Image.fromarray(np.ascontiguousarray(rgb)).resize(
            (S, S), Image.Resampling.BICUBIC))
        dev = self.mean.device
        images = torch.from_numpy(small).to(dev).permute(2, 0, 1)[None].float()  # (1, 3, S, S)
        images = (images - self.mean) / self.std
        heat, score = self.heatmap(self.backbone, images, small, text)
        box, objective = box_search(heat, self.alpha, self.downsample)
        # The released scaling of inclusive pixel indices: x * W / S (slic_vit.py forward).
        box = box.double().numpy() * np.array([W / S, H / S, W / S, H / S])
        y, x = divmod(int(heat.flatten().argmax()), S)  # the first maximum
        point = ((x + 0.5) * W / S, (y + 0.5) * H / S)
        return PhraseOutput(box=box.astype(np.float32), heatmap=heat.cpu().numpy(),
                            point=point, score=score, objective=objective)

    def forward(self, inputs: Sequence[Tensor], data_samples: Sequence[dict] | None = None,
                mode: str = 'predict') -> list[BaseDataElement]:
        """Localise each sample's phrase (``mode='predict'``; nothing here trains).

        Args:
            inputs: per sample, a (3, H, W) uint8 RGB tensor.
            data_samples: per sample, a ``BaseDataElement`` (or dict) with ``phrase`` (and the
                ground truth the metrics read, passed through).

        Returns:
            ``BaseDataElement``s: the samples' fields with ``pred_bbox`` (4,), ``pred_point``
            (2,) and ``pred_score``.
        """
        if mode != 'predict':
            raise ValueError(f"PhraseGroundingModel: mode={mode!r}; it is training-free and "
                             "only predicts (mode='predict')")
        if data_samples is None:
            raise ValueError('PhraseGroundingModel: each input needs a data sample with its '
                             "'phrase'")
        out = []
        for image, sample in zip(inputs, data_samples):
            fields = sample.to_dict() if isinstance(sample, BaseDataElement) else dict(sample)
            res = self.localize(image.permute(1, 2, 0).cpu().numpy().astype(np.uint8),
                                fields['phrase'])
            out.append(BaseDataElement(**fields, pred_bbox=res.box.tolist(),
                                       pred_point=list(res.point), pred_score=res.score))
        return out
