"""CLIP-DINOiser: "Teaching CLIP a few DINO tricks for open-vocabulary semantic segmentation",
Wysoczańska, Siméoni, Ramamonjisoa, Bursuc, Trzciński, Pérez, ECCV 2024.

arXiv: https://arxiv.org/abs/2312.12359 — code: wysoczanska/clip_dinoiser@a954aae.

Against MaskCLIP, each patch feature is replaced by an average of the patch features it
correlates with, the correlations being predicted from CLIP's own intermediate tokens by a
3x3 conv trained to mimic DINO's patch correlations; a 1x1 conv trained on unsupervised
saliency optionally turns uncertain non-salient patches into "background".

The formulas below are read from the released code (``models/clip_dinoiser/clip_dinoiser.py``
``CLIP_DINOiser.forward_pass/forward``, ``DinoCLIP.compute_weighted_pool``); the paper's
equation numbers could not be checked offline, so comments name the step instead:

    G  = LN2 output inside block L-2 (``resblocks[-3]``), patch tokens          (guidance)
    P  = normalize(Conv3x3(G)) per location;  C = PᵀP;  C[C < γ] = 0          (correlations)
    F'_i = Σ_j C_ij F_j / (Σ_j C_ij + 1e-6)                                    (pooling)
    b  = sigmoid(Conv1x1(G / ‖G‖))                                             (background)
    FOUND override: p_0 = 1 where max_k p_k < δ and b ≤ 0.5                    (VOC21, Object)

Training the two convs lives in ``denseclip.models.segmentors.clip_dinoiser_trainer``.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from denseclip.clip import load_state_dict_strict
from denseclip.models.backbones.clip_vit import CLIPViT, DenseOutput
from denseclip.models.dense.base import block_qkv, check_block, merge_heads, num_prefix
from denseclip.models.refiner_protocols import FeatureRefiner
from denseclip.registry import MODELS

__all__ = ['block_ln2_output', 'clip_dinoiser_guidance', 'object_correlations',
           'correlation_pool', 'background_logits', 'found_background_override',
           'load_clip_dinoiser_heads', 'CLIPDINOiserRefiner']

# The released models/clip_dinoiser/clip_dinoiser.py hooks ``resblocks[feats_idx]`` with
# feats_idx=-3 (configs/clip_dinoiser.yaml): block 10 of 12 (1-based) for ViT-B.
GUIDANCE_BLOCK = -3
_POOL_EPS = 1e-6  # DinoCLIP.compute_weighted_pool

# Explicit key tables per source layout (STYLE.md "Weights"): ours and the released
# ``checkpoints/last.pt`` (train.py get_model_dict: {'epoch', 'model_state_dict': {...}}) use
# the module names; a CLIPDINOiserTrainer mmengine checkpoint nests them under ``refiner.``.
_HEAD_KEYS = ('obj_proj.weight', 'obj_proj.bias', 'bkg_decoder.weight', 'bkg_decoder.bias')
_RENAME_TABLES = {
    'released': {key: key for key in _HEAD_KEYS},  # also heads.safetensors
    'trainer': {f'refiner.{key}': key for key in _HEAD_KEYS},
}


def block_ln2_output(block: nn.Module, x: Tensor, grid: tuple[int, int]) -> Tensor:
    """The input of an open_clip block's MLP, ``LN2(x + ls_1(attn(LN1(x))))``, patch tokens only.

    Args:
        block: an open_clip ``ResidualAttentionBlock`` (plain softmax attention).
        x: (B, 1+N, D) tokens entering the block.
        grid: (h, w) patch grid, N = h*w.

    Returns:
        (B, D, h, w) in the block's weight dtype.
    """
    check_block(block)
    x = x.to(block.ln_1.weight.dtype)
    q, k, v = block_qkv(block, x, grid)  # each (B, nh, P+N, hd)
    z = x + block.ls_1(block.attn.out_proj(merge_heads(F.scaled_dot_product_attention(q, k, v))))
    g = block.ln_2(z)[:, num_prefix(z, grid):]  # (B, N, D)
    return g.transpose(1, 2).reshape(g.shape[0], -1, *grid)  # (B, D, h, w)


def clip_dinoiser_guidance(blocks: nn.ModuleList, tokens: list[Tensor], grid: tuple[int, int],
                           block_index: int = GUIDANCE_BLOCK) -> Tensor:
    """G, recomputed from the trunk's tokens of :meth:`CLIPViT.forward_dense`.

    ``tokens[i]`` is the input of ``blocks[i]`` ([after ln_pre, after block 0, ..., after block
    L-2]), so ``blocks[block_index]`` reads ``tokens[block_index % L]``.

    Args:
        blocks: the L blocks of the image tower.
        tokens: L tensors (B, 1+N, D).
        grid: (h, w) patch grid.
        block_index: the block whose LN2 output is G (released: -3).

    Returns:
        (B, D, h, w) guidance features.
    """
    if len(tokens) != len(blocks):
        raise ValueError(f'clip_dinoiser_guidance: {len(tokens)} token tensors for '
                         f'{len(blocks)} blocks; expected one per block input')
    if not -len(blocks) <= block_index < len(blocks):
        raise ValueError(f'clip_dinoiser_guidance: block_index={block_index} for a '
                         f'{len(blocks)}-block tower')
    index = block_index % len(blocks)
    return block_ln2_output(blocks[index], tokens[index], grid)


def object_correlations(proj: Tensor) -> Tensor:
    """Cosine correlations between all locations of a projected map (correlations step).

    Args:
        proj: (B, C, h, w), e.g. Conv3x3(G).

    Returns:
        (B, N, N) with C_ij = <p_i, p_j> / (‖p_i‖ ‖p_j‖), N = h*w.
    """
    p = proj.flatten(2)  # (B, C, N)
    # Deviation: F.normalize's eps keeps an all-zero location finite, where the released
    # ``proj / proj.norm()`` gives NaN; identical otherwise.
    p = F.normalize(p, dim=1)
    return p.transpose(1, 2) @ p  # (B, N, N)


def correlation_pool(feats: Tensor, corr: Tensor, gamma: float) -> Tensor:
    """Correlation-weighted pooling (pooling step), C < γ set to 0 first:
    F'_i = Σ_j C_ij F_j / (Σ_j C_ij + 1e-6).

    Args:
        feats: (B, E, h, w) dense features (MaskCLIP's, before or after ``proj``: the pooling
            is linear, so both give the same result up to the projection).
        corr: (B, N, N) correlations, N = h*w.
        gamma: correlations below it are zeroed (released: 0.2); None or 0 keeps them all.

    Returns:
        (B, E, h, w) pooled features.
    """
    B, E, h, w = feats.shape
    if corr.shape != (B, h * w, h * w):
        raise ValueError(f'correlation_pool: correlations {tuple(corr.shape)} do not match '
                         f'features {tuple(feats.shape)}; expected ({B}, {h * w}, {h * w})')
    if gamma:
        corr = corr.masked_fill(corr < gamma, 0.0)
    corr = corr.to(feats.dtype)
    pooled = feats.flatten(2) @ corr.transpose(1, 2)  # (B, E, N): Σ_j F_j C_ij
    norm = corr.sum(-1)[:, None]  # (B, 1, N)
    return (pooled / (norm + _POOL_EPS)).reshape(B, E, h, w)  # (B, E, h, w)


def background_logits(bkg_decoder: nn.Module, guidance: Tensor) -> Tensor:
    """Background-head logits: Conv1x1(G / ‖G‖) (background step; sigmoid gives b).

    Args:
        bkg_decoder: the 1x1 conv D -> 1.
        guidance: (B, D, h, w) G.

    Returns:
        (B, 1, h, w) logits; b > 0.5 (logit > 0) marks a salient (object) patch.
    """
    # Deviation: F.normalize's eps instead of the released division by the raw norm.
    return bkg_decoder(F.normalize(guidance, dim=1))


def found_background_override(probs: Tensor, background: Tensor, *, delta: float = 0.99,
                              background_index: int = 0) -> Tensor:
    """FOUND-style background: uncertain, non-salient patches become background.

    Where ``max_k probs_k < delta`` and ``background <= 0.5``, the background class probability is
    set to 1.0 (the other classes are left as they are, as the released code does).

    Args:
        probs: (B, K, h, w) class probabilities (softmax over classes) at the patch grid.
        background: (B, 1, h, w) b = sigmoid(bkg logits), the salient-object probability.
        delta: certainty threshold (released: 0.99).
        background_index: the class that is the background (class 0 in VOC21 and Object).

    Returns:
        (B, K, h, w) a new tensor; ``probs`` is not modified.
    """
    if background.shape != (probs.shape[0], 1, *probs.shape[2:]):
        raise ValueError(f'found_background_override: background {tuple(background.shape)} '
                         f'does not match probs {tuple(probs.shape)}')
    # Deviation: the released code reshapes to (1, K, -1) and so assumes batch size 1; this is
    # applied per image.
    uncertain = probs.amax(dim=1, keepdim=True) < delta  # (B, 1, h, w)
    not_salient = background <= 0.5  # sigmoid > 0.5 is the released hard FOUND mask
    out = probs.clone()
    out[:, background_index:background_index + 1].masked_fill_(uncertain & not_salient, 1.0)
    return out


def load_clip_dinoiser_heads(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read the two heads from ``heads.safetensors`` (ours), the released ``last.pt``, or a
    :class:`CLIPDINOiserTrainer` mmengine checkpoint, renamed to this module's keys.

    Torch files are read with ``weights_only=True`` (mmengine checkpoints with the allow-list of
    :func:`denseclip.engine.checkpoint.mmengine_safe_globals`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'CLIP-DINOiser heads file not found: {path}')
    if path.suffix == '.safetensors':
        from safetensors.torch import load_file

        state = load_file(str(path), device='cpu')
    else:
        from denseclip.engine.checkpoint import mmengine_safe_globals

        with mmengine_safe_globals():
            state = torch.load(str(path), map_location='cpu', weights_only=True)
        for wrapper in ('model_state_dict', 'state_dict'):  # released train.py, mmengine
            if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
                state = state[wrapper]
                break
    if not isinstance(state, dict):
        raise ValueError(f'{path}: expected a state dict, got {type(state).__name__}')
    layout = 'trainer' if 'refiner.obj_proj.weight' in state else 'released'
    table = _RENAME_TABLES[layout]
    return {table.get(key, key): value for key, value in state.items()}


@MODELS.register_module()
class CLIPDINOiserRefiner(FeatureRefiner):
    """Correlation pooling of dense CLIP features, and the background head.

    The segmentor calls ``feats = refiner(feats, dense, backbone)`` on each batch of windows
    before the cosine with the text embeddings; with ``apply_found`` it also calls
    :meth:`override_background` on the windows' class probabilities at the patch grid.

    Args:
        in_channels: D, width of CLIP's image tower (768 for ViT-B); None: read from the
            checkpoint.
        proj_channels: output channels of ``obj_proj`` (released ``in_dim``: 256); None: read
            from the checkpoint.
        gamma: correlation threshold γ (released: 0.2).
        apply_found: turn uncertain non-salient patches into background (released: VOC21 and
            COCO-Object only).
        found_delta: δ, the certainty threshold of the override (released: 0.99).
        checkpoint: heads file (see :func:`load_clip_dinoiser_heads`); None keeps the random
            initialisation (training, tests).
        guidance_block: block whose LN2 output is G (released ``feats_idx``: -3).
    """

    def __init__(self, in_channels: int | None = 768, proj_channels: int | None = 256,
                 gamma: float = 0.2,
                 apply_found: bool = False, found_delta: float = 0.99,
                 checkpoint: str | os.PathLike | None = None,
                 guidance_block: int = GUIDANCE_BLOCK) -> None:
        super().__init__()
        state = load_clip_dinoiser_heads(checkpoint) if checkpoint is not None else None
        if in_channels is None or proj_channels is None:
            if state is None or 'obj_proj.weight' not in state:
                raise ValueError('CLIPDINOiserRefiner: in_channels/proj_channels=None are read '
                                 'from the heads checkpoint; pass checkpoint= or both sizes')
            proj_channels, in_channels = state['obj_proj.weight'].shape[:2]
        self.obj_proj = nn.Conv2d(in_channels, proj_channels, 3, padding=1,
                                  padding_mode='replicate')
        self.bkg_decoder = nn.Conv2d(in_channels, 1, 1)
        self.gamma = gamma
        self.apply_found = apply_found
        self.found_delta = found_delta
        self.guidance_block = guidance_block
        if state is not None:
            load_state_dict_strict(self, state, source=os.fspath(checkpoint))

    def guidance(self, dense: DenseOutput, backbone: CLIPViT) -> Tensor:
        """G (B, D, h, w) from a :class:`DenseOutput` of ``backbone`` (a ``CLIPViT``)."""
        if dense.tokens[0].shape[-1] != self.obj_proj.in_channels:
            raise ValueError(f'CLIPDINOiserRefiner: in_channels={self.obj_proj.in_channels} '
                             f'but the backbone is {dense.tokens[0].shape[-1]} wide')
        return clip_dinoiser_guidance(backbone.blocks, dense.tokens, dense.grid,
                                      self.guidance_block)

    def forward(self, feats: Tensor, dense: DenseOutput, backbone: CLIPViT) -> Tensor:
        """Pool ``feats`` (B, E, h, w) with the predicted correlations; float32, same shape."""
        # The heads and the pooling run in float32 even inside the backbone's autocast.
        with torch.autocast(feats.device.type, enabled=False):
            proj = self.obj_proj(self.guidance(dense, backbone))  # (B, C', h, w)
            return correlation_pool(feats.float(), object_correlations(proj), self.gamma)

    def background(self, dense: DenseOutput, backbone: CLIPViT) -> Tensor:
        """b = sigmoid(Conv1x1(G/‖G‖)): (B, 1, h, w) float32 salient-object probability."""
        with torch.autocast(dense.feats.device.type, enabled=False):
            return background_logits(self.bkg_decoder, self.guidance(dense, backbone)).sigmoid()

    def override_background(self, probs: Tensor, dense: DenseOutput, backbone: CLIPViT,
                            background_index: int = 0) -> Tensor:
        """:func:`found_background_override` with this refiner's b and δ; a no-op unless
        ``apply_found``."""
        if not self.apply_found:
            return probs
        return found_background_override(probs, self.background(dense, backbone),
                                         delta=self.found_delta,
                                         background_index=background_index)

    def extra_repr(self) -> str:
        return (f'gamma={self.gamma}, apply_found={self.apply_found}, '
                f'found_delta={self.found_delta}, guidance_block={self.guidance_block}')
