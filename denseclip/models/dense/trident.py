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

Refinement (``sam_refinement``, ``seg_utils/utils.py sam_refinement``): the labels and class
probabilities are halved; each class's 8-connected regions of at least ``minimal_area`` pixels
(pixels below ``coarse_thresh`` unlabelled) prompt SAM with their box, their most probable point
and the class's thresholded probabilities scaled by ``sam_mask_coff`` as the mask input; masks
with predicted IoU above ``sam_iou_thresh`` replace the class's map by max sigmoid(logit)·p on
their union and the labels by its argmax where any class is covered (:func:`sam_refinement`).

The pieces: :class:`TridentAttention` (the per-window step), :func:`splice_windows`,
:func:`sam_last_attention` (SAM's last-block attention and values, from the block's own
weights), :func:`sam_correlation` (W), :func:`trident_resize`, :func:`coarse_prompts` and
:func:`sam_refinement`, :class:`TridentSegmentor`.

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
* SAM prompt refinement (``sam_refinement``, off as in ``base_config.py``; the released eval
  commands pass ``--sam_refine``): SAM is set on our SAM input (above) and its embedding comes
  from the same encoder pass as the correlation (on Cityscapes, a pass on the whole image, as
  the release's second ``set_image``); the regions' prompts go through the mask decoder in
  batches across classes instead of one call per class (the same per-prompt computation, up
  to rounding); the mask input's 256 is the prompt encoder's ``mask_input_size`` (256 for
  SAM). As released, each class's mask is embedded unbatched, so SAM's mask ``LayerNorm2d``
  normalises over rows. The whole ``Sam`` is built from the ``SAMProxy`` config's
  ``model_type`` and ``checkpoint`` (the proxy keeps only the encoder).

Any ViT as the correlation encoder: :class:`ViTCorrelationEncoder` gives a timm ViT's last-block
attention and values (from the block's own ``norm1``/``qkv``, patch tokens) for
:func:`attention_correlation`, the same W as :func:`sam_correlation`. It sees the image as SAM
does (rounded up to the patch, long side ``img_size``) with its own normalisation, zero-padded to
a multiple of the patch only. It is not Trident's method: the toy config uses it because the toy
world has no SAM (``configs/trident/trident_toy-vit-p16_toy.py``); real configs use SAM's path.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from torch import Tensor, nn

from denseclip.models.backbones.proxy import SAM_PIXEL_MEAN, SAM_PIXEL_STD, build_sam
from denseclip.models.segmentors.base import slide_windows
from denseclip.models.segmentors.open_vocab import OpenVocabSegmentor
from denseclip.registry import MODELS

from .base import Grid
from .proxyclip import ProxyCLIPAttention


# ------------------------------------------------------------------------- per window
@MODELS.register_module()
class TridentAttention(ProxyCLIPAttention):
    """ProxyCLIP's proxy attention over a batch of windows of one image, with one β·mean(S)
    for all of them (``custom_attn`` over the batched windows); returns the tokens after
    ``out_proj`` at the proxy's grid, before LN_post (the splice comes first).

    Args: as :class:`~denseclip.models.dense.proxyclip.ProxyCLIPAttention` (Trident:
    DINO ViT-B/16, β = 1.2, γ = 3).
    """

    # Its splice and SAM correlation are validated on open_clip towers only.
    supported_families = ('openclip',)

    def window_beta(self, feats: Tensor) -> Tensor:
        """(B, 1, 1) per-window β_w with β_w·mean(S^w) = β·mean over all windows' S.

        :func:`~denseclip.models.dense.proxyclip.proxy_attention` takes the mean per window;
        this rescales β so that the threshold is the release's joint one (a window whose mean
        is exactly 0 keeps β·0).
        """
        fn = F.normalize(feats, dim=-1)
        m = (fn @ fn.transpose(1, 2)).mean(dim=(1, 2), keepdim=True)  # (B, 1, 1)
        joint = m.mean()  # all windows have N' tokens: the mean of the (B, N', N') tensor
        return torch.where(m != 0, self.beta * joint / torch.where(m != 0, m, 1.0),
                           torch.full_like(m, self.beta))


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
def _sam_trunk(encoder: nn.Module, images: Tensor) -> Tensor:
    """segment-anything ``ImageEncoderViT`` up to its last block: (1, g, g, C) tokens."""
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
    return x


def sam_last_attention(encoder: nn.Module, images: Tensor, *, return_input: bool = False
                       ) -> tuple[Tensor, ...]:
    """q, k, v of the last block of segment-anything's ``ImageEncoderViT``.

    The encoder runs to its last block; that block's ``norm1`` and ``attn.qkv`` give q, k, v
    (the released encoder stores ``attn`` and ``v`` of that block as ``last_attn``/``last_v``).
    The last block must use global attention (SAM's do: ``global_attn_indexes`` ends at it).

    Args:
        images: (1, 3, S, S) SAM-normalised, zero-padded.
        return_input: also return the last block's input (1, g, g, C) (to finish the encoder).

    Returns:
        q, k, v, each (nh, T, hd) on the encoder's (g, g) grid, T = g² [, the block's input].
    """
    x = _sam_trunk(encoder, images)
    last = encoder.blocks[-1]
    attn = last.attn
    _, g1, g2, _ = x.shape
    qkv = attn.qkv(last.norm1(x)).reshape(g1 * g2, 3, attn.num_heads, -1)  # (T, 3, nh, hd)
    q, k, v = qkv.permute(1, 2, 0, 3).unbind(0)  # (nh, T, hd) each
    return (q, k, v, x) if return_input else (q, k, v)


def sam_head_attention(encoder: nn.Module, q: Tensor, k: Tensor, grid: Grid) -> Tensor:
    """softmax(s·q kᵀ + rel-pos) of one head of SAM's last block: (T, hd) -> (T, T)."""
    from segment_anything.modeling.image_encoder import add_decomposed_rel_pos

    attn = encoder.blocks[-1].attn
    scores = (q * attn.scale) @ k.transpose(-2, -1)  # (T, T)
    if attn.use_rel_pos:
        scores = add_decomposed_rel_pos(scores[None], q[None], attn.rel_pos_h, attn.rel_pos_w,
                                        grid, grid)[0]
    return scores.softmax(dim=-1)


def _crop_grid(x: Tensor, grid: Grid, valid: Grid) -> Tensor:
    """(T, ...) tokens on ``grid`` -> (N, ...) of its top-left ``valid`` part."""
    g1, g2 = grid
    vh, vw = valid
    return x.reshape(g1, g2, *x.shape[1:])[:vh, :vw].reshape(vh * vw, *x.shape[1:])


def correlation_weights(v: Tensor, head_attention, cos_fac: float,
                        refine_neg_cos: bool = True) -> Tensor:
    """W of ``get_sam_sim`` from values and per-head attention on the valid tokens.

    Args:
        v: (nh, N, hd) values of the valid tokens.
        head_attention: h -> (N, N) softmax attention of head h, valid queries and keys (one
            map at a time: SAM ViT-B's twelve 4096² maps are not held together).
        cos_fac, refine_neg_cos: see :func:`sam_correlation`.

    Returns:
        (N, N), rows summing to 1.
    """
    u = F.normalize(v, dim=-1)  # (nh, N, hd)
    nh, N, _ = u.shape
    # τ_i = cos_fac · mean_{h,j} û_hi·û_hj = cos_fac · mean_h û_hi · mean_j û_hj
    tau = cos_fac * (u * u.mean(dim=1, keepdim=True)).sum(-1).mean(0)  # (N,)
    if not refine_neg_cos:
        tau = torch.where(tau < 0, torch.full_like(tau, 0.6), tau)
    tau = tau.clamp(max=0.9)[:, None]  # (N, 1)
    weights = u.new_zeros(N, N)
    for h in range(nh):
        a = head_attention(h)  # (N, N)
        weights += torch.where(u[h] @ u[h].T > tau, a, torch.zeros_like(a))
    weights /= nh
    return weights / weights.sum(-1, keepdim=True)


def sam_correlation(encoder: nn.Module, images: Tensor, valid: Grid, cos_fac: float,
                    refine_neg_cos: bool = True, *, return_embedding: bool = False
                    ) -> Tensor | tuple[Tensor, Tensor]:
    """Trident's aggregation weights W (N, N) on SAM's valid (unpadded) grid (``get_sam_sim``).

    Args:
        encoder: segment-anything ``ImageEncoderViT``.
        images: (1, 3, S, S) SAM-normalised, zero-padded bottom/right.
        valid: (vh, vw) tokens of the unpadded image, N = vh·vw.
        cos_fac: factor of the per-query mean cosine in the threshold τ.
        refine_neg_cos: keep a negative τ (True); else a negative τ becomes 0.6.
        return_embedding: also finish the encoder (last block, neck): the image embedding
            (1, C, g, g) that ``SamPredictor.set_image`` keeps as ``features``.

    Returns:
        (N, N), rows summing to 1 [, the image embedding].
    """
    q, k, v, x = sam_last_attention(encoder, images, return_input=True)
    g = math.isqrt(v.shape[1])

    def head(h: int) -> Tensor:
        a = sam_head_attention(encoder, q[h], k[h], (g, g))  # (T, T)
        return _crop_grid(_crop_grid(a, (g, g), valid).T, (g, g), valid).T  # valid q and k

    vv = torch.stack([_crop_grid(vi, (g, g), valid) for vi in v])  # (nh, N, hd)
    weights = correlation_weights(vv, head, cos_fac, refine_neg_cos)
    if not return_embedding:
        return weights
    embedding = encoder.neck(encoder.blocks[-1](x).permute(0, 3, 1, 2))  # (1, C, g, g)
    return weights, embedding


def attention_correlation(attn: Tensor, v: Tensor, grid: Grid, valid: Grid, cos_fac: float,
                          refine_neg_cos: bool = True) -> Tensor:
    """:func:`sam_correlation`'s W from a correlation encoder's last-block attention.

    Args:
        attn: (nh, T, T) softmax attention of the patch tokens on ``grid`` (T = g1·g2).
        v: (nh, T, hd) their values.
        grid: (g1, g2) the encoder's token grid.
        valid: (vh, vw) its top-left part covering the image (N = vh·vw).

    Returns:
        (N, N), rows summing to 1.
    """
    def head(h: int) -> Tensor:
        return _crop_grid(_crop_grid(attn[h], grid, valid).T, grid, valid).T

    vv = torch.stack([_crop_grid(vi, grid, valid) for vi in v])
    return correlation_weights(vv, head, cos_fac, refine_neg_cos)


@MODELS.register_module()
class ViTCorrelationEncoder(nn.Module):
    """A timm ViT's last block as Trident's correlation encoder in place of SAM's.

    Gives what Trident reads from SAM's encoder (``last_attn``, ``last_v``): the last block's
    softmax attention and values per head, computed from the block's own ``norm1`` and
    ``attn.qkv`` (``q_norm``/``k_norm`` and scale as the block applies them), on the patch
    tokens (prefix tokens are dropped as queries and keys after the softmax, as the release
    crops SAM's padded keys after its softmax).

    The segmentor feeds it the image as it feeds SAM (sides rounded up to the patch, resized
    to ``img_size`` on the long side, aspect kept) but normalised with the ViT's ``mean``/``std``
    and zero-padded only to a multiple of the patch, not to a square.

    Args:
        vit: a :class:`~denseclip.models.backbones.proxy.DINOProxy` config or module (a timm
            ViT with its weights, normalisation and position-embedding resize).
        img_size: the long side of its input in pixels.
    """

    def __init__(self, vit: dict | nn.Module, img_size: int = 224) -> None:
        super().__init__()
        self.vit = MODELS.build(vit) if isinstance(vit, dict) else vit
        if not hasattr(self.vit, '_embed') or not hasattr(self.vit, 'vit'):
            raise TypeError('ViTCorrelationEncoder: vit must be a DINOProxy (config or module), '
                            f'got {type(self.vit).__name__}')
        self.vit.eval()
        self.img_size = img_size
        self.patch_size = self.vit.patch_size
        self.mean, self.std = self.vit.mean, self.vit.std

    def last_attention(self, images: Tensor) -> tuple[Tensor, Tensor, Grid]:
        """(B, 3, H, W) normalised, H and W multiples of the patch -> attention
        (B, nh, N, N), values (B, nh, N, hd) of the N = I·J patch tokens, and (I, J)."""
        vit = self.vit.vit
        x, grid = self.vit._embed(images)
        for block in vit.blocks[:-1]:
            x = block(x)
        last = vit.blocks[-1]
        attn = last.attn
        B, T, _ = x.shape
        qkv = attn.qkv(last.norm1(x)).reshape(B, T, 3, attn.num_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, nh, T, hd) each
        q, k = attn.q_norm(q), attn.k_norm(k)
        a = ((q * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1)  # (B, nh, T, T)
        P = vit.num_prefix_tokens
        return a[:, :, P:, P:], v[:, :, P:], grid


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


# ------------------------------------------------------------------------- refinement
def coarse_prompts(labels: Tensor, probs: Tensor, coarse_thresh: float, minimal_area: int
                   ) -> tuple[list[int], Tensor, Tensor, Tensor]:
    """The prompts of ``split_connected_regions`` on the half-size coarse map.

    Each class c < K whose max probability reaches ``coarse_thresh`` is split into
    8-connected regions of its labels; regions of fewer than ``minimal_area`` pixels are
    dropped. With ``coarse_thresh > 0``, pixels whose max probability is below it are labelled
    K first (they belong to no class and are never prompted).

    Args:
        labels: (h, w) int64 labels (the half-size map of :func:`sam_refinement`).
        probs: (K, h, w) class probabilities.

    Returns:
        classes (R,) of the regions, regions (R, h, w) bool, boxes (R, 4) float x1, y1, x2, y2
        (``masks_to_boxes``: inclusive), points (R, 2) int64 x, y (the first maximum of the
        class probability inside the region), ordered by class then label.
    """
    from skimage import measure
    from torchvision.ops import masks_to_boxes

    K, h, w = probs.shape
    labels = labels.clone()
    if coarse_thresh > 0:
        labels[probs.max(0)[0] < coarse_thresh] = K
    labels_np = labels.cpu().numpy()
    classes, regions, points = [], [], []
    for c in range(K):
        if probs[c].max() < coarse_thresh:
            continue
        labelled = measure.label(labels_np == c, connectivity=2)  # 8-connectivity
        for r in range(1, labelled.max() + 1):
            region = labelled == r
            if region.sum() < minimal_area:
                continue
            region = torch.from_numpy(region).to(probs.device)
            pos = int(torch.argmax(probs[c] * region))
            classes.append(c)
            regions.append(region)
            points.append(torch.tensor([pos % w, pos // w]))
    if not regions:
        return [], probs.new_zeros(0, h, w, dtype=torch.bool), probs.new_zeros(0, 4), \
            torch.zeros(0, 2, dtype=torch.long)
    regions = torch.stack(regions)
    return classes, regions, masks_to_boxes(regions), torch.stack(points)


@torch.no_grad()
def sam_refinement(sam: nn.Module, embedding: Tensor, labels: Tensor, probs: Tensor,
                   input_size: Grid, original_size: Grid, coarse_thresh: float = 0.0,
                   minimal_area: int = 0, sam_mask_coff: float = 0.005,
                   sam_iou_thresh: float = 0.9, prompt_batch: int = 64
                   ) -> tuple[Tensor, Tensor]:
    """Trident's SAM prompt refinement (``seg_utils/utils.py sam_refinement``@a93b346).

    The coarse map is halved (labels nearest, probabilities bilinear) and split into prompts
    (:func:`coarse_prompts`). Each region prompts SAM with its box, its most probable point
    (label 1) and its class's probability map: resized to the mask input's frame (long side
    256 for SAM, zero-padded), ``sam_mask_coff``·p where p > ``coarse_thresh`` and 0
    elsewhere; one mask each (``multimask_output=False``). Masks whose predicted IoU is at most
    ``sam_iou_thresh`` fail. Each class with surviving masks gets
    ``max_r sigmoid(logit_r)·p_c`` on the union of its masks (``map_refinement_coarse``); the
    labels are its argmax where some class has one, else the coarse labels. The pixels of the
    failed regions take max(p_c, refined) (``map_failed_regions``; the labels' test there never
    holds). Without a surviving mask the input comes back unchanged.

    The release calls SAM once per class; here all regions go through the mask decoder in
    batches of ``prompt_batch`` (each with its class's mask embedding): the same per-prompt
    computation. As released, each class's mask is embedded as an *unbatched* (1, 256, 256)
    tensor, so the mask embedding's ``LayerNorm2d`` normalises over rows, not channels.

    Args:
        sam: segment-anything ``Sam`` (its prompt encoder, mask decoder, ``postprocess_masks``).
        embedding: (1, C, g, g) the image embedding (``SamPredictor.features``).
        labels: (H, W) int64 coarse labels (after ``prob_thd``).
        probs: (K, H, W) class probabilities (softmax, synonyms merged).
        input_size: (h, w) the image's size inside SAM's input (``SamPredictor.input_size``).
        original_size: (h, w) the image SAM was given (``SamPredictor.original_size``).
        coarse_thresh, minimal_area, sam_mask_coff, sam_iou_thresh: as released.
        prompt_batch: prompts per mask-decoder call (bounds memory only).

    Returns:
        labels (H, W) int64 and probabilities (K, H, W), refined.
    """
    from segment_anything.utils.transforms import ResizeLongestSide

    K, H, W = probs.shape
    dh, dw = H // 2, W // 2  # down_ratio = 2
    labels_down = F.interpolate(labels[None, None].float(), size=(dh, dw),
                                mode='nearest')[0, 0].long()
    probs_down = F.interpolate(probs[None], size=(dh, dw), mode='bilinear',
                               align_corners=False)[0]
    classes, regions, boxes, points = coarse_prompts(labels_down, probs_down, coarse_thresh,
                                                     minimal_area)
    if not classes:
        return labels, probs
    device = probs.device
    transform = ResizeLongestSide(sam.image_encoder.img_size)
    # the mask input: each prompted class's probabilities (long side 256 for SAM, padded)
    m = sam.prompt_encoder.mask_input_size[0]
    mh, mw = transform.get_preprocess_shape(H, W, m)
    used = sorted(set(classes))
    dense = []
    for c in used:
        r = F.interpolate(probs_down[c][None, None], size=(mh, mw), mode='bilinear',
                          align_corners=False)[0]
        r = F.pad(r, (0, m - mw, 0, m - mh))
        r = torch.where(r > coarse_thresh, sam_mask_coff * r, torch.zeros_like(r))
        dense.append(sam.prompt_encoder(points=None, boxes=None, masks=r)[1])  # unbatched
    dense = torch.stack(dense)  # (classes, C, g, g)
    index = torch.tensor([used.index(c) for c in classes], device=device)
    coords = transform.apply_coords_torch(points.to(device), (dh, dw))[:, None]  # (R, 1, 2)
    box = transform.apply_boxes_torch(boxes.to(device), (dh, dw))  # (R, 4)
    ones = torch.ones(len(classes), 1, device=device)
    pe = sam.prompt_encoder.get_dense_pe()
    lows, ious = [], []
    for i in range(0, len(classes), prompt_batch):
        sl = slice(i, i + prompt_batch)
        sparse, _ = sam.prompt_encoder(points=(coords[sl], ones[sl]), boxes=box[sl], masks=None)
        low, iou = sam.mask_decoder(image_embeddings=embedding, image_pe=pe,
                                    sparse_prompt_embeddings=sparse,
                                    dense_prompt_embeddings=dense[index[sl]],
                                    multimask_output=False)
        lows.append(low)
        ious.append(iou)
    low, iou = torch.cat(lows), torch.cat(ious)[:, 0]  # (R, 1, m, m), (R,)
    keep = iou > sam_iou_thresh
    if not keep.any():
        return labels, probs
    refined = probs.new_zeros(K, H, W)
    cls = torch.tensor(classes, device=device)
    for c in used:  # map_refinement_coarse, one class's masks at a time
        sel = keep & (cls == c)
        if not sel.any():
            continue
        logits = sam.postprocess_masks(low[sel], input_size, original_size)  # (n, 1, h, w)
        if tuple(logits.shape[-2:]) != (H, W):
            logits = F.interpolate(logits, size=(H, W), mode='bilinear', align_corners=False)
        mask = (logits[:, 0] > sam.mask_threshold).any(0)
        refined[c] = (logits[:, 0].sigmoid() * probs[c]).max(0)[0] * mask
    out = torch.where(refined.sum(0) == 0, labels, refined.argmax(0))
    if not keep.all():  # map_failed_regions
        failed = F.interpolate(regions[~keep].any(0)[None, None].float(), size=(H, W),
                               mode='nearest')[0] != 0  # (1, H, W)
        failed_p = failed * probs
        refined = torch.where(failed_p > refined, failed_p, refined)
        out = torch.where(failed_p.max(0)[0] > refined.max(0)[0], labels, out)
    return out, refined


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
def _is_sam_model(module: object) -> bool:
    """A whole segment-anything ``Sam`` (encoder, prompt encoder, mask decoder)."""
    return all(hasattr(module, name) for name in ('image_encoder', 'prompt_encoder',
                                                  'mask_decoder'))


@MODELS.register_module()
class TridentSegmentor(OpenVocabSegmentor):
    """Trident: windows spliced on the whole image's grid, aggregated with SAM's attention.

    Call graph (the rest is :class:`OpenVocabSegmentor`'s)::

        predict(inputs, data_samples) -> per image:
          inference / trident_scores(image, ori_shape)
            └─ trident_features: trident_resize -> slide_windows -> trunk + TridentAttention
               (all windows) -> splice_windows -> sam_correlation (or attention_correlation
               of a ViTCorrelationEncoder) per part -> LN_post, proj
               -> cosine at the correlation grid -> bilinear to ori_shape [-> refiner]
          postprocess (softmax, synonyms, prob_thd) [-> sam_refinement with SAM's embedding]

    Args:
        sam: the correlation encoder. SAM: ``dict(type='SAMProxy', model_type='vit_b',
            checkpoint=...)`` (its ``encoder``; with ``sam_refinement`` the whole ``Sam`` is
            built from the same ``model_type`` and ``checkpoint``), a registered builder of an
            ``ImageEncoderViT`` (``SmallSAMEncoder``), or a built encoder or ``Sam``. Any other
            ViT: a :class:`ViTCorrelationEncoder` config or module (the toy world's stand-in).
        cos_fac: τ's factor (1.2; 0 on VOC20, 3.0 on Cityscapes).
        refine_neg_cos: keep negative thresholds (True; False on Cityscapes and ADE20K).
        sam_splits: SAM runs on this many equal-width vertical strips (2 on Cityscapes).
        sam_refinement: SAM prompt refinement of the labels (:func:`sam_refinement`); needs a
            whole ``Sam``.
        coarse_thresh, minimal_area, sam_mask_coff, sam_iou_thresh: the refinement's settings
            (defaults: trident.py ``Trident``'s; the harness carries base_config.py's).
        prompt_batch: SAM prompts per mask-decoder call in the refinement (memory only).
        **kwargs: :class:`OpenVocabSegmentor`'s (``backbone`` with
            ``dense=dict(type='TridentAttention', ...)``, ``slide_crop``, ``slide_stride``...).
    """

    def __init__(self, *, sam: dict | nn.Module, cos_fac: float = 1.2,
                 refine_neg_cos: bool = True, sam_splits: int = 1,
                 sam_refinement: bool = False, coarse_thresh: float = 0.10,
                 minimal_area: int = 225, sam_mask_coff: float = 0.005,
                 sam_iou_thresh: float = 0.9, prompt_batch: int = 64, **kwargs) -> None:
        if sam_splits < 1:
            raise ValueError(f'TridentSegmentor: sam_splits={sam_splits}; expected >= 1')
        if prompt_batch < 1:
            raise ValueError(f'TridentSegmentor: prompt_batch={prompt_batch}; expected >= 1')
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
        if isinstance(sam, dict) and sam_refinement and sam.get('type') == 'SAMProxy':
            # the refinement needs SAM's prompt encoder and mask decoder: the whole model
            built = build_sam(sam.get('model_type', 'vit_b'), sam.get('checkpoint'), 'Trident')
        else:
            built = MODELS.build(sam) if isinstance(sam, dict) else sam
        self.sam_model = built.eval() if _is_sam_model(built) else None
        encoder = (built.image_encoder if self.sam_model is not None
                   else getattr(built, 'encoder', built))  # SAMProxy holds the ImageEncoderViT
        self.sam = encoder
        self.generic = hasattr(encoder, 'last_attention')
        if not self.generic and (not hasattr(encoder, 'blocks')
                                 or not hasattr(encoder, 'patch_embed')):
            raise TypeError('TridentSegmentor: sam must build a segment-anything '
                            'ImageEncoderViT, Sam or SAMProxy, or a ViTCorrelationEncoder, got '
                            f'{type(encoder).__name__}')
        if sam_refinement and self.sam_model is None:
            raise ValueError('TridentSegmentor: sam_refinement=True prompts SAM: sam must be '
                             "dict(type='SAMProxy', model_type=..., checkpoint=...) or a built "
                             f'segment-anything Sam, got {type(built).__name__}')
        self.sam.eval()
        self.cos_fac = cos_fac
        self.refine_neg_cos = refine_neg_cos
        self.sam_splits = sam_splits
        self.sam_refinement = sam_refinement
        self.coarse_thresh = coarse_thresh
        self.minimal_area = minimal_area
        self.sam_mask_coff = sam_mask_coff
        self.sam_iou_thresh = sam_iou_thresh
        self.prompt_batch = prompt_batch
        if self.generic:  # the encoder's own normalisation, on the 0-255 scale
            sam_mean = tuple(255 * m for m in encoder.mean)
            sam_std = tuple(255 * s for s in encoder.std)
        else:
            sam_mean, sam_std = SAM_PIXEL_MEAN, SAM_PIXEL_STD
        for kind, values in (('sam_mean', sam_mean), ('sam_std', sam_std)):
            self.register_buffer(f'_{kind}', torch.tensor(values).view(1, 3, 1, 1),
                                 persistent=False)

    @property
    def sam_patch(self) -> int:
        return self.sam.patch_size if self.generic else self.sam.patch_embed.proj.kernel_size[0]

    def sam_parts(self, image: Tensor, ori_shape: Sequence[int], splits: int | None = None
                  ) -> list[tuple[Tensor, Grid]]:
        """The correlation encoder's inputs and valid grids, one per strip, left to right.

        SAM's are (1, 3, S, S), zero-padded to its square; a :class:`ViTCorrelationEncoder`'s
        are padded to a multiple of its patch only. ``splits`` defaults to ``sam_splits``.
        """
        p, S = self.sam_patch, self.sam.img_size
        splits = self.sam_splits if splits is None else splits
        h0, w0 = (int(s) for s in ori_shape[:2])
        size = (math.ceil(h0 / p) * p, math.ceil(w0 / p) * p)  # the release's cv2.resize
        pixels = self.pixels(image)  # (1, 3, H, W) RGB 0-255
        pixels = F.interpolate(pixels, size=size, mode='bilinear', align_corners=False)
        bounds = [size[1] * i // splits for i in range(splits + 1)]
        parts = []
        for x1, x2 in zip(bounds[:-1], bounds[1:]):
            th, tw = sam_input_size(size[0], x2 - x1, S, p)
            part = F.interpolate(pixels[..., x1:x2], size=(th, tw), mode='bilinear',
                                 align_corners=False, antialias=True)
            part = (part - self._sam_mean) / self._sam_std
            ph, pw = ((-th % p, -tw % p) if self.generic else (S - th, S - tw))
            part = F.pad(part, (0, pw, 0, ph))  # SAM's preprocess: pad bottom/right
            parts.append((part, (max(th // p, 1), max(tw // p, 1))))
        return parts

    def correlation(self, part: Tensor, valid: Grid, embed: bool = False
                    ) -> tuple[Tensor, Tensor | None]:
        """W (N, N) of one part [and SAM's image embedding, for the refinement]."""
        if self.generic:
            attn, v, grid = self.sam.last_attention(part)
            return attention_correlation(attn[0], v[0], grid, valid, self.cos_fac,
                                         self.refine_neg_cos), None
        out = sam_correlation(self.sam, part, valid, self.cos_fac, self.refine_neg_cos,
                              return_embedding=embed)
        return out if embed else (out, None)

    def trident_features(self, image: Tensor, ori_shape: Sequence[int], embed: bool = False
                         ) -> tuple[Tensor, Tensor | None]:
        """(1, E, h, w) joint-space features at the correlation encoder's valid grid (strips
        side by side) [and, with ``embed``, SAM's embedding of the whole image]."""
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
        embedding = None
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
                weights, emb = self.correlation(sam_image.to(image.dtype), valid,
                                                embed and len(parts) == 1)
                weights = weights.float()
                embedding = emb
                dst = F.interpolate(spliced[..., x1:x2], size=valid, mode='bilinear',
                                    align_corners=False)  # (1, D, vh, vw)
                out = weights @ dst.flatten(2)[0].T  # (N, D)
                outs.append(out.T.reshape(1, -1, *valid))
            if embed and embedding is None:  # Cityscapes: set_image on the whole image too
                whole_sam = self.sam_parts(image, ori_shape, splits=1)[0][0]
                embedding = self.sam(whole_sam.to(image.dtype))
            out = torch.cat(outs, dim=-1)  # (1, D, vh, Σ vw)
            size = out.shape[2:]
            feats = backbone.project(out.flatten(2).transpose(1, 2), size).float()
        return feats, (embedding.float() if embedding is not None else None)

    def trident_scores(self, image: Tensor, ori_shape: Sequence[int], text: Tensor | None = None,
                       embed: bool = False) -> tuple[Tensor, Tensor | None]:
        """(1, Q, H0, W0) cosine scores [and SAM's image embedding]: see :meth:`inference`."""
        if text is None:
            text = self.text_for()[1]
        feats, embedding = self.trident_features(image, ori_shape, embed)
        feats = F.normalize(feats, dim=1)
        logits = torch.einsum('behw,qe->bqhw', feats, text.float()).contiguous()
        size = tuple(int(s) for s in ori_shape[:2])
        logits = F.interpolate(logits, size=size, mode='bilinear', align_corners=False)
        if self.refiner is not None:
            image = F.interpolate(image, size=size, mode='bilinear', align_corners=False)
            logits = self.refiner(image, logits)
        return logits, embedding

    @torch.inference_mode()
    def inference(self, image: Tensor, ori_shape: Sequence[int], text: Tensor | None = None
                  ) -> Tensor:
        """(1, Q, H0, W0) cosine scores: at SAM's grid, bilinear to ``ori_shape``."""
        return self.trident_scores(image, ori_shape, text)[0]

    def refine(self, image: Tensor, ori_shape: Sequence[int], embedding: Tensor, labels: Tensor,
               probs: Tensor) -> tuple[Tensor, Tensor]:
        """:func:`sam_refinement` of one image's (H0, W0) labels and (K, H0, W0) probabilities,
        with SAM set on the whole image (original size rounded up to SAM's patch)."""
        p, S = self.sam_patch, self.sam.img_size
        h0, w0 = (int(s) for s in ori_shape[:2])
        original = (math.ceil(h0 / p) * p, math.ceil(w0 / p) * p)
        return sam_refinement(self.sam_model, embedding, labels, probs,
                              sam_input_size(h0, w0, S, p), original, self.coarse_thresh,
                              self.minimal_area, self.sam_mask_coff, self.sam_iou_thresh,
                              self.prompt_batch)

    @torch.inference_mode()
    def predict(self, inputs: Tensor, data_samples: Sequence[SegDataSample] | None = None
                ) -> list[SegDataSample]:
        """:meth:`OpenVocabSegmentor.predict`, then SAM's refinement if ``sam_refinement``."""
        if not self.sam_refinement:
            return super().predict(inputs, data_samples)
        vocabulary, text = self.text_for(data_samples)
        results = []
        for i, meta in enumerate(self._metas(inputs, data_samples)):
            h, w = meta.get('img_shape', inputs.shape[2:])[:2]
            image = inputs[i:i + 1, :, :h, :w]
            logits, embedding = self.trident_scores(image, meta['ori_shape'], text, embed=True)
            probs, labels = self.postprocess(logits[0], vocabulary)
            labels, probs = self.refine(image, meta['ori_shape'], embedding, labels, probs)
            sample = data_samples[i] if data_samples is not None else SegDataSample()
            sample.set_data(dict(seg_logits=PixelData(data=probs),
                                 pred_sem_seg=PixelData(data=labels[None])))
            results.append(sample)
        return results

    def score_windows(self, crops: Tensor, text: Tensor) -> Tensor:
        raise NotImplementedError('TridentSegmentor scores whole images (inference): its '
                                  'windows are spliced before they are scored')

    def extra_repr(self) -> str:
        return (f'cos_fac={self.cos_fac}, refine_neg_cos={self.refine_neg_cos}, '
                f'sam_splits={self.sam_splits}, sam_refinement={self.sam_refinement}')
