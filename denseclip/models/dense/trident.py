"""Trident: "Harnessing Vision Foundation Models for High-Performance, Training-Free Open
Vocabulary Segmentation", Shi, Dong, Xu, ICCV 2025.

arXiv: https://arxiv.org/abs/2411.09219 — code: YuHengsss/Trident@a93b346: ``trident.py``
(``Trident.get_trident_seg``, ``get_windowed_imgs``, ``get_sam_feat``), ``seg_utils/utils.py``
(``preprocess_image``, ``sam_refinement``), ``open_clip/transformer.py``
(``VisionTransformer.forward``, ``custom_attn``, ``guidance_attn``, ``get_sam_sim``) and
``segment_anything/modeling/image_encoder.py`` (``last_attn``, ``last_v`` of the last block).

Splice, then segment. The image is resized so both sides are multiples of the patch p
(``preprocess_image``) and cut into ``slide_crop`` windows (stride ``slide_stride``). Per
window w, with f the L2-normalised DINO ViT-B/16 patch features and v CLIP's last-block values
(bilinear to DINO's grid), as ProxyCLIP's
:func:`~denseclip.models.dense.proxyclip.proxy_attention`::

    S^w = f^w f^wᵀ,   A^w = softmax(γ(S^w − β·mean_{w',i,j} S^{w'}_ij), entries < 0 -> −∞)
    X^w = o(A^w v^w)                      β = 1.2, γ = 3, no residual, FFN, CLIP q/k or [CLS]

(the mean is over *all* windows of the image: the release encodes them as one batch). Splice:
X = the windows' X^w added at their places on the whole image's token grid and divided by the
count (``guidance_attn``). SAM's encoder sees the image resized to 1024 on its long side
(zero-padded square); on its valid grid (the unpadded part, N tokens) with a^h its last
block's softmax attention of head h and u^h its values::

    c^h_ij = û^h_i · û^h_j                 (cosine of SAM's values)
    τ_i    = min(cos_fac · mean_{h,j} c^h_ij, 0.9)     (τ_i < 0 -> 0.6 if not refine_neg_cos)
    W      = rownorm(mean_h [c^h_ij > τ_i] a^h_ij)
    F      = LN_post(W · up(X)) · P           up: bilinear to SAM's valid grid

and the scores are cos(F, t_c) at SAM's grid, bilinearly resized to the image's original size,
then softmax(40·cos) over queries, max over synonyms, ``prob_thd``. Cityscapes (``sam_splits=2``):
the image is split into left and right halves, SAM runs on each, X is split likewise and each
half aggregated with its own W (``get_trident_seg``'s "special cases for cityscapes").

The pieces: :class:`TridentAttention` (the per-window step), :func:`splice_windows`,
:func:`sam_last_attention` (SAM's last-block attention and values, from the block's own
weights), :func:`sam_correlation` (W), :func:`trident_resize`, :class:`TridentSegmentor`.

Deviations from the released code:

* SAM sees the pipeline-resized network input, un-normalised to 0-255, not the image file
  re-read from disk with cv2 inside ``predict``; it is resized to the original size rounded up
  to multiples of 16 (bilinear, as ``cv2.resize``) and then to SAM's input size (bilinear with
  antialiasing, as the PIL resize of ``ResizeLongestSide``) without rounding to uint8, so the
  SAM grid is the release's exactly and its pixels are a resampling of the same image.
* The Cityscapes split is a setting (``sam_splits``) of the Cityscapes config, not a test of
  ``dataset_type``.
* Windows are not zero-padded to a multiple of 56: with the released 336 crop they never need
  it, and where a window would (an image side below the crop that is not a multiple of 56) the
  released splice fails on mismatched shapes; ours encodes the window at its size.
* Rows are H and columns W throughout: the released ``forward`` passes ``token_size`` as
  (W/p, H/p), which scrambles non-square windows (only images smaller than the crop have them).
* τ's mean over keys is computed as û_i · mean_j û_j (equal up to rounding) so that SAM's
  per-head maps are held one at a time; a SAM valid grid side below one token is taken as one.
* The released ``Trident`` runs CLIP, DINO and SAM in fp16 on CUDA; ours runs the segmentor's
  ``dtype`` (float32 by default). All windows of an image are encoded in one batch, as
  released (the β·mean spans them), so ``window_batch`` does not apply.
* ``sam_refinement`` (SAM prompted with boxes, points and masks from the coarse map,
  ``seg_utils/utils.py sam_refinement``) is not implemented; ``sam_refinement=True`` raises.
  The published numbers' use of it is not stated in the released configs (it is the command
  line's ``--sam_refine``, off by default in ``base_config.py``).
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from denseclip.models.backbones.proxy import SAM_PIXEL_MEAN, SAM_PIXEL_STD
from denseclip.models.segmentors.base import CLIP_MEAN, CLIP_STD, slide_windows
from denseclip.models.segmentors.open_vocab import OpenVocabSegmentor
from denseclip.registry import MODELS

from .base import NUM_PREFIX_TOKENS, Grid, merge_heads
from .proxyclip import ProxyCLIPAttention, proxy_attention


# ------------------------------------------------------------------------- per window
@MODELS.register_module()
class TridentAttention(ProxyCLIPAttention):
    """ProxyCLIP's proxy attention over a batch of windows of one image, with one β·mean(S)
    for all of them (``custom_attn`` over the batched windows); returns the tokens after
    ``out_proj`` at the proxy's grid, before LN_post (the splice comes first).

    Args: as :class:`~denseclip.models.dense.proxyclip.ProxyCLIPAttention` (Trident:
    DINO ViT-B/16, β = 1.2, γ = 3).
    """

    def joint_beta(self, f: Tensor) -> Tensor:
        """(B, 1, 1) per-window β_w with β_w·mean(S^w) = β·mean over all windows' S.

        :func:`proxy_attention` takes the mean per window; this rescales β so that the
        threshold is the release's joint one (a window whose mean is exactly 0 keeps β·0).
        """
        fn = F.normalize(f, dim=-1)
        m = (fn @ fn.transpose(1, 2)).mean(dim=(1, 2), keepdim=True)  # (B, 1, 1)
        joint = m.mean()  # all windows have N' tokens: the mean of the (B, N', N') tensor
        return torch.where(m != 0, self.beta * joint / torch.where(m != 0, m, 1.0),
                           torch.full_like(m, self.beta))

    def dense_forward(self, blocks: nn.ModuleList, tokens: list[Tensor], grid: Grid,
                      images: Tensor) -> tuple[Tensor, Grid, None]:
        feats = self.proxy(self.proxy_images(images))  # (B, C, I, J)
        B, _, gi, gj = feats.shape
        block = blocks[-1]
        attn = block.attn
        D = tokens[-1].shape[-1]
        x = block.ln_1(tokens[-1][:, NUM_PREFIX_TOKENS:])  # (B, N, D)
        v = F.linear(x, attn.in_proj_weight[2 * D:], attn.in_proj_bias[2 * D:])  # (B, N, D)
        nh = attn.num_heads
        v = v.transpose(1, 2).reshape(B * nh, D // nh, *grid)  # (B*nh, hd, h, w)
        v = F.interpolate(v, size=(gi, gj), mode='bilinear', align_corners=False)
        v = v.reshape(B, nh, D // nh, gi * gj).transpose(2, 3)  # (B, nh, IJ, hd)
        f = feats.flatten(2).transpose(1, 2)  # (B, IJ, C)
        out = proxy_attention(f, v, self.joint_beta(f), self.gamma)  # (B, nh, IJ, hd)
        return block.ls_1(attn.out_proj(merge_heads(out))), (gi, gj), None


# ------------------------------------------------------------------------- splice
def splice_windows(tokens: Tensor, grid: Grid, boxes: Sequence[tuple[int, int, int, int]],
                   size: Grid, stride: int) -> Tensor:
    """The windows' token maps placed on the whole image's grid, averaged where they overlap.

    Args:
        tokens: (n, N, D) window tokens on a (I, J) ``grid``.
        grid: (I, J); each window's pixel box is ``stride``/r pixels a token (r = I·p / h_px).
        boxes: the windows' (y1, y2, x1, x2) pixel boxes (:func:`slide_windows`).
        size: (H, W) pixels of the whole image.
        stride: pixels per token of ``grid`` (the CLIP patch over the proxy/CLIP grid ratio).

    Returns:
        (1, D, H/stride, W/stride).
    """
    n, _, D = tokens.shape
    maps = tokens.transpose(1, 2).reshape(n, D, *grid)
    canvas = tokens.new_zeros(1, D, size[0] // stride, size[1] // stride)
    count = tokens.new_zeros(1, 1, size[0] // stride, size[1] // stride)
    for (y1, y2, x1, x2), m in zip(boxes, maps):
        canvas[0, :, y1 // stride:y2 // stride, x1 // stride:x2 // stride] += m
        count[0, :, y1 // stride:y2 // stride, x1 // stride:x2 // stride] += 1
    return canvas / count


# ------------------------------------------------------------------------- SAM
def sam_last_attention(encoder: nn.Module, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """q, k, v of the last block of segment-anything's ``ImageEncoderViT``.

    The encoder runs to its last block; that block's ``norm1`` and ``attn.qkv`` give q, k, v
    (the released encoder stores ``attn`` and ``v`` of that block as ``last_attn``/``last_v``).
    The last block must use global attention (SAM's do: ``global_attn_indexes`` ends at it).

    Args:
        images: (1, 3, S, S) SAM-normalised, zero-padded.

    Returns:
        q, k, v, each (nh, T, hd) on the encoder's (g, g) grid, T = g².
    """
    last = encoder.blocks[-1]
    if last.window_size > 0:
        raise ValueError('Trident: the SAM encoder\'s last block uses window attention '
                         f'(window_size={last.window_size}); Trident reads a global-attention '
                         'last block (global_attn_indexes must include the last index)')
    if images.shape[0] != 1:
        raise ValueError(f'Trident: SAM input {tuple(images.shape)}; expected one image')
    x = encoder.patch_embed(images)  # (1, g, g, C)
    if encoder.pos_embed is not None:
        x = x + encoder.pos_embed
    for block in encoder.blocks[:-1]:
        x = block(x)
    attn = last.attn
    _, g1, g2, _ = x.shape
    qkv = attn.qkv(last.norm1(x)).reshape(g1 * g2, 3, attn.num_heads, -1)  # (T, 3, nh, hd)
    q, k, v = qkv.permute(1, 2, 0, 3).unbind(0)  # (nh, T, hd) each
    return q, k, v


def sam_head_attention(encoder: nn.Module, q: Tensor, k: Tensor, grid: Grid) -> Tensor:
    """softmax(s·q kᵀ + rel-pos) of one head of SAM's last block: (T, hd) -> (T, T)."""
    from segment_anything.modeling.image_encoder import add_decomposed_rel_pos

    attn = encoder.blocks[-1].attn
    scores = (q * attn.scale) @ k.transpose(-2, -1)  # (T, T)
    if attn.use_rel_pos:
        scores = add_decomposed_rel_pos(scores[None], q[None], attn.rel_pos_h, attn.rel_pos_w,
                                        grid, grid)[0]
    return scores.softmax(dim=-1)


def sam_correlation(encoder: nn.Module, images: Tensor, valid: Grid, cos_fac: float,
                    refine_neg_cos: bool = True) -> Tensor:
    """Trident's aggregation weights W (N, N) on SAM's valid (unpadded) grid (``get_sam_sim``).

    Args:
        encoder: segment-anything ``ImageEncoderViT``.
        images: (1, 3, S, S) SAM-normalised, zero-padded bottom/right.
        valid: (vh, vw) tokens of the unpadded image, N = vh·vw.
        cos_fac: factor of the per-query mean cosine in the threshold τ.
        refine_neg_cos: keep a negative τ (True); else a negative τ becomes 0.6.

    Returns:
        (N, N), rows summing to 1.
    """
    q, k, v = sam_last_attention(encoder, images)
    nh, T, _ = v.shape
    g = math.isqrt(T)
    vh, vw = valid

    def crop(x: Tensor) -> Tensor:  # (T, ...) on the (g, g) grid -> (N, ...) valid tokens
        return x.reshape(g, g, *x.shape[1:])[:vh, :vw].reshape(vh * vw, *x.shape[1:])

    u = F.normalize(torch.stack([crop(vi) for vi in v]), dim=-1)  # (nh, N, hd)
    # τ_i = cos_fac · mean_{h,j} û_hi·û_hj = cos_fac · mean_h û_hi · mean_j û_hj
    tau = cos_fac * (u * u.mean(dim=1, keepdim=True)).sum(-1).mean(0)  # (N,)
    if not refine_neg_cos:
        tau = torch.where(tau < 0, torch.full_like(tau, 0.6), tau)
    tau = tau.clamp(max=0.9)[:, None]  # (N, 1)
    weights = u.new_zeros(vh * vw, vh * vw)
    for h in range(nh):  # one (T, T) map at a time
        a = sam_head_attention(encoder, q[h], k[h], (g, g))  # (T, T)
        a = crop(crop(a).T).T  # (N, N): valid queries and keys
        weights += torch.where(u[h] @ u[h].T > tau, a, torch.zeros_like(a))
    weights /= nh
    return weights / weights.sum(-1, keepdim=True)


@MODELS.register_module()
class SmallSAMEncoder(nn.Module):
    """A deterministic random small segment-anything ``ImageEncoderViT`` (toy world, tests),
    held as ``encoder`` (as :class:`~denseclip.models.backbones.proxy.SAMProxy` holds SAM's).

    SAM's wiring (16-pixel patches, relative positions, windowed blocks and a global last
    block, LayerNorm eps 1e-6) at reduced size, initialised from ``seed`` without touching the
    global random state. Its attention is untrained: a stand-in, never SAM.
    """

    def __init__(self, seed: int = 0, img_size: int = 448, embed_dim: int = 64, depth: int = 2,
                 num_heads: int = 2, window_size: int = 7) -> None:
        super().__init__()
        try:
            from segment_anything.modeling import ImageEncoderViT
        except ImportError:
            raise ImportError("Trident needs segment-anything: pip install 'denseclip[demo]' "
                              'or pip install segment-anything') from None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.encoder = ImageEncoderViT(
                img_size=img_size, patch_size=16, embed_dim=embed_dim, depth=depth,
                num_heads=num_heads, mlp_ratio=4.0, out_chans=embed_dim, qkv_bias=True,
                norm_layer=partial(nn.LayerNorm, eps=1e-6), use_rel_pos=True,
                rel_pos_zero_init=False, window_size=window_size,
                global_attn_indexes=(depth - 1,)).eval()


# ------------------------------------------------------------------------- geometry
def trident_resize(height: int, width: int, stride: int, crop: int) -> Grid:
    """The whole image's size (``preprocess_image``): unchanged if both sides are multiples of
    ``stride``; else the long side rounded up to one, the short side scaled with it and rounded
    up, each side at least ``crop``."""
    if height % stride == 0 and width % stride == 0:
        return height, width
    longer = max(height, width)
    dst = math.ceil(longer / stride) * stride
    h, w = int(height * dst / longer), int(width * dst / longer)
    h, w = math.ceil(h / stride) * stride, math.ceil(w / stride) * stride
    return max(h, crop), max(w, crop)


def sam_input_size(height: int, width: int, long_side: int, stride: int = 16) -> Grid:
    """SAM's input (h, w) for an original (height, width): rounded up to multiples of
    ``stride``, then ``ResizeLongestSide.get_preprocess_shape`` to ``long_side``."""
    h, w = math.ceil(height / stride) * stride, math.ceil(width / stride) * stride
    scale = long_side / max(h, w)
    return int(h * scale + 0.5), int(w * scale + 0.5)


# ------------------------------------------------------------------------- segmentor
@MODELS.register_module()
class TridentSegmentor(OpenVocabSegmentor):
    """Trident: windows spliced on the whole image's grid, aggregated with SAM's attention.

    Call graph (the rest is :class:`OpenVocabSegmentor`'s)::

        inference(image, ori_shape)
          └─ trident_logits: trident_resize -> slide_windows -> trunk + TridentAttention
             (all windows) -> splice_windows -> sam_correlation per SAM part -> LN_post, proj
             -> cosine at SAM's grid -> bilinear to ori_shape [-> refiner]

    Args:
        sam: a segment-anything image encoder config: ``dict(type='SAMProxy',
            model_type='vit_b', checkpoint=...)`` (its ``encoder`` is used) or any registered
            builder of an ``ImageEncoderViT`` (``SmallSAMEncoder``), or a built one.
        cos_fac: τ's factor (1.2; 0 on VOC20, 3.0 on Cityscapes).
        refine_neg_cos: keep negative thresholds (True; False on Cityscapes and ADE20K).
        sam_splits: SAM runs on this many equal-width vertical strips (2 on Cityscapes).
        sam_refinement: SAM prompt refinement; not implemented, True raises.
        **kwargs: :class:`OpenVocabSegmentor`'s (``backbone`` with
            ``dense=dict(type='TridentAttention', ...)``, ``slide_crop``, ``slide_stride``...).
    """

    def __init__(self, *, sam: dict | nn.Module, cos_fac: float = 1.2,
                 refine_neg_cos: bool = True, sam_splits: int = 1,
                 sam_refinement: bool = False, **kwargs) -> None:
        if sam_refinement:
            raise NotImplementedError(
                'TridentSegmentor: sam_refinement=True (SAM prompted with boxes, points and '
                'masks from the coarse map, Trident seg_utils/utils.py sam_refinement) is not '
                'implemented; set sam_refinement=False')
        if sam_splits < 1:
            raise ValueError(f'TridentSegmentor: sam_splits={sam_splits}; expected >= 1')
        for name in ('pad_to_patch', 'pad_multiple', 'global_view', 'resize_to'):
            if kwargs.get(name):
                raise ValueError(f'TridentSegmentor: {name}={kwargs[name]!r} is not part of '
                                 "Trident's window path; leave it unset")
        super().__init__(**kwargs)
        if not isinstance(self.backbone.dense, TridentAttention):
            raise TypeError('TridentSegmentor: the backbone needs dense=dict(type='
                            f"'TridentAttention', ...), got {type(self.backbone.dense).__name__}")
        p = self.backbone.patch_size
        if not self.slide_crop or self.slide_crop % p or self.slide_stride % p:
            raise ValueError(f'TridentSegmentor: slide_crop={self.slide_crop}, slide_stride='
                             f'{self.slide_stride}; Trident splices windows on the patch grid: '
                             f'both must be positive multiples of the patch size {p}')
        encoder = MODELS.build(sam) if isinstance(sam, dict) else sam
        self.sam = getattr(encoder, 'encoder', encoder)  # SAMProxy holds the ImageEncoderViT
        if not hasattr(self.sam, 'blocks') or not hasattr(self.sam, 'patch_embed'):
            raise TypeError('TridentSegmentor: sam must build a segment-anything '
                            f'ImageEncoderViT (or a SAMProxy), got {type(self.sam).__name__}')
        self.sam.eval()
        self.cos_fac = cos_fac
        self.refine_neg_cos = refine_neg_cos
        self.sam_splits = sam_splits
        for kind, values in (('mean', CLIP_MEAN), ('std', CLIP_STD),
                             ('sam_mean', SAM_PIXEL_MEAN), ('sam_std', SAM_PIXEL_STD)):
            self.register_buffer(f'_{kind}', torch.tensor(values).view(1, 3, 1, 1),
                                 persistent=False)

    @property
    def sam_patch(self) -> int:
        return self.sam.patch_embed.proj.kernel_size[0]

    def sam_parts(self, image: Tensor, ori_shape: Sequence[int]) -> list[tuple[Tensor, Grid]]:
        """SAM's inputs (1, 3, S, S) and valid grids, one per strip, left to right."""
        p, S = self.sam_patch, self.sam.img_size
        h0, w0 = (int(s) for s in ori_shape[:2])
        size = (math.ceil(h0 / p) * p, math.ceil(w0 / p) * p)  # the release's cv2.resize
        pixels = image.float() * self._std + self._mean  # (1, 3, H, W) RGB 0-255
        pixels = F.interpolate(pixels, size=size, mode='bilinear', align_corners=False)
        bounds = [size[1] * i // self.sam_splits for i in range(self.sam_splits + 1)]
        parts = []
        for x1, x2 in zip(bounds[:-1], bounds[1:]):
            th, tw = sam_input_size(size[0], x2 - x1, S, p)
            part = F.interpolate(pixels[..., x1:x2], size=(th, tw), mode='bilinear',
                                 align_corners=False, antialias=True)
            part = (part - self._sam_mean) / self._sam_std
            part = F.pad(part, (0, S - tw, 0, S - th))  # SAM's preprocess: pad bottom/right
            parts.append((part, (max(th // p, 1), max(tw // p, 1))))
        return parts

    def trident_features(self, image: Tensor, ori_shape: Sequence[int]) -> Tensor:
        """(1, E, h, w) joint-space features at SAM's valid grid (strips side by side)."""
        backbone = self.backbone
        p = backbone.patch_size
        H, W = trident_resize(*image.shape[2:], p, self.slide_crop)
        whole = image
        if (H, W) != tuple(image.shape[2:]):
            whole = F.interpolate(image, size=(H, W), mode='bilinear', align_corners=False)
        boxes = slide_windows(H, W, self.slide_crop, self.slide_stride)
        crops = torch.cat([whole[:, :, y1:y2, x1:x2] for y1, y2, x1, x2 in boxes])
        amp_dtype = self.amp_dtype(image.device.type)
        autocast = (torch.autocast(image.device.type, dtype=amp_dtype) if amp_dtype
                    else contextlib.nullcontext())
        with autocast:
            tokens, grid = backbone.trunk(crops)
            x, (gi, gj), _ = backbone.dense.dense_forward(backbone.blocks, tokens, grid, crops)
            x = x.float()
            r = max(round(gi / grid[0]), 1)
            if (gi, gj) != (r * grid[0], r * grid[1]):  # guidance_attn: resize to r x CLIP grid
                maps = x.transpose(1, 2).reshape(x.shape[0], -1, gi, gj)
                maps = F.interpolate(maps, size=(r * grid[0], r * grid[1]), mode='bilinear',
                                     align_corners=False)
                gi, gj = r * grid[0], r * grid[1]
                x = maps.flatten(2).transpose(1, 2)
            if p % r:
                raise ValueError(f'Trident: the proxy grid is {r}x the CLIP grid, which does '
                                 f'not divide the patch size {p}')
            spliced = splice_windows(x, (gi, gj), boxes, (H, W), p // r)
            parts = self.sam_parts(image, ori_shape)
            bounds = [spliced.shape[-1] * i // len(parts) for i in range(len(parts) + 1)]
            outs = []
            for (sam_image, valid), x1, x2 in zip(parts, bounds[:-1], bounds[1:]):
                weights = sam_correlation(self.sam, sam_image.to(image.dtype), valid,
                                          self.cos_fac, self.refine_neg_cos).float()
                dst = F.interpolate(spliced[..., x1:x2], size=valid, mode='bilinear',
                                    align_corners=False)  # (1, D, vh, vw)
                out = weights @ dst.flatten(2)[0].T  # (N, D)
                outs.append(out.T.reshape(1, -1, *valid))
            out = torch.cat(outs, dim=-1)  # (1, D, vh, Σ vw)
            size = out.shape[2:]
            return backbone.project(out.flatten(2).transpose(1, 2), size).float()

    @torch.inference_mode()
    def inference(self, image: Tensor, ori_shape: Sequence[int], text: Tensor | None = None
                  ) -> Tensor:
        """(1, Q, H0, W0) cosine scores: at SAM's grid, bilinear to ``ori_shape``."""
        if text is None:
            text = self.text_for()[1]
        feats = F.normalize(self.trident_features(image, ori_shape), dim=1)
        logits = torch.einsum('behw,qe->bqhw', feats, text.float()).contiguous()
        size = tuple(int(s) for s in ori_shape[:2])
        logits = F.interpolate(logits, size=size, mode='bilinear', align_corners=False)
        if self.refiner is not None:
            image = F.interpolate(image, size=size, mode='bilinear', align_corners=False)
            logits = self.refiner(image, logits)
        return logits

    def score_windows(self, crops: Tensor, text: Tensor) -> Tensor:
        raise NotImplementedError('TridentSegmentor scores whole images (inference): its '
                                  'windows are spliced before they are scored')

    def extra_repr(self) -> str:
        return (f'cos_fac={self.cos_fac}, refine_neg_cos={self.refine_neg_cos}, '
                f'sam_splits={self.sam_splits}')
