"""Proxy encoders: vision foundation models whose last-layer patch features guide ProxyCLIP.

Each proxy maps images in its own normalisation to last-layer features (B, C, I, J) and states
that normalisation as ``mean``/``std`` (RGB, 0-1 scale), so callers re-normalise CLIP inputs.

* :class:`DINOProxy`: a timm ViT (DINO ``vit_base_patch8_224.dino``, DINOv2 with registers
  ``vit_base_patch14_reg4_dinov2.lvd142m``, ...): last block output after the final norm, prefix
  ([CLS], register) tokens dropped; any H, W divisible by the patch size, the position
  embedding resized as the original repository does. A CLIP image tower works too
  (``vit_base_patch16_clip_224`` with CLIP's mean/std; see :func:`to_timm_layout`).
* :class:`SAMProxy`: segment-anything's image encoder; the input is resized to its square
  ``img_size`` (1024) whatever its shape, and the neck's 256-d 64×64 map is returned (ProxyCLIP
  ``proxyclip_segmentor.py``@e7b767f ``forward_feature``).

Weights: ``pretrained=None`` (random, tests), ``'timm'`` (timm's hub file for the tag, from
the cache; downloaded unless offline) or a local file (timm, DINO, DINOv2 or OpenAI/open_clip
CLIP layout), read with ``weights_only=True`` and loaded strictly.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Literal

import timm
import torch
import torch.nn.functional as F
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import checkpoint_filter_fn
from torch import Tensor, nn

from denseclip.clip import WeightsNotFoundError, load_state_dict_strict, read_state_dict
from denseclip.clip.loading import _OFFLINE_ENV
from denseclip.clip.pos_embed import resample_pos_embed
from denseclip.registry import MODELS

logger = logging.getLogger(__name__)

# SAM's pixel mean/std on the 0-255 scale (build_sam.py) are ImageNet's times 255.
SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)

PosInterp = Literal['scale_factor', 'size_antialias']


def from_clip_normalisation(images: Tensor, mean: Sequence[float],
                            std: Sequence[float]) -> Tensor:
    """CLIP-normalised (B, 3, H, W) images -> the same pixels normalised with a proxy's RGB
    ``mean``/``std`` on the 0-1 scale (ProxyCLIP, CorrCLIP and Trident feed their second
    encoder this way: ``self.norm(self.unnorm(img))``)."""
    def column(values: Sequence[float]) -> Tensor:
        return torch.tensor(values, dtype=torch.float32, device=images.device).view(3, 1, 1)

    pixels = images * column(OPENAI_DATASET_STD) + column(OPENAI_DATASET_MEAN)  # 0-1
    return ((pixels - column(mean)) / column(std)).to(images.dtype)


def _check_file(path: str | os.PathLike, owner: str) -> None:
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{owner}: weights file not found: {path}')


def _from_dinov2_layout(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """facebookresearch/dinov2 checkpoints -> timm's layout (timm ``_convert_dinov2``).

    ``mask_token`` is for training only. With registers, timm's ``no_embed_class`` ViT adds
    position embeddings to patches only, so the [CLS] entry of ``pos_embed`` is folded into
    ``cls_token``. Other files pass through unchanged.
    """
    state = {k: v for k, v in state.items() if k != 'mask_token'}
    if 'register_tokens' in state:
        state['reg_token'] = state.pop('register_tokens')
        pos = state.pop('pos_embed')
        state['cls_token'] = state['cls_token'] + pos[:, :1]
        state['pos_embed'] = pos[:, 1:]
    return state


def _from_clip_layout(state: dict[str, Tensor], vit: nn.Module,
                      source: str) -> dict[str, Tensor]:
    """An OpenAI / open_clip CLIP checkpoint -> the timm ViT of its image tower.

    The renaming is timm's own (``checkpoint_filter_fn`` sees ``visual.class_embedding`` and
    calls ``_convert_openai_clip``), which keeps only ``visual.*``: the text tower, logit scale
    and text projection are left out. The architecture must be given to timm:
    ``vit_base_patch16_clip_224`` (pre-norm, no patch bias) with ``act_layer='quick_gelu'`` for
    a QuickGELU CLIP (OpenAI's), and the width, depth and heads of the tower.
    """
    # checkpoint_filter_fn would resample a patch or position embedding of another size without
    # a word; a file that does not fit the architecture must fail like any other mismatch.
    for key, own in (('visual.conv1.weight', vit.patch_embed.proj.weight),
                     ('visual.positional_embedding', vit.pos_embed[0])):
        if key in state and state[key].shape != own.shape:
            raise ValueError(f'{source}: {key} is {tuple(state[key].shape)} but the timm model '
                             f'expects {tuple(own.shape)}; set patch_size/img_size (and the '
                             'width) in model_kwargs to those of the CLIP tower')
    state = checkpoint_filter_fn(state, vit)
    if isinstance(vit.head, nn.Identity):
        # timm makes `head` of CLIP's image-text projection `visual.proj`, which acts on the
        # pooled token; proxies and teachers read tokens before it and build no head.
        state = {k: v for k, v in state.items() if k not in ('head.weight', 'head.bias')}
    return state


def to_timm_layout(state: dict[str, Tensor], vit: nn.Module, source: str) -> dict[str, Tensor]:
    """A checkpoint read by ``read_state_dict`` -> ``vit``'s timm layout, for a strict load.

    Args:
        state: timm's layout (passed through), facebookresearch's DINO (the same) or DINOv2
            layout, or an OpenAI / open_clip CLIP (``visual.class_embedding`` present: the image
            tower, renamed by timm, its projection dropped).
        vit: the timm ``VisionTransformer`` to load.
        source: the file, for error messages.

    Returns:
        The state dict in timm's layout.
    """
    if 'visual.class_embedding' in state:
        return _from_clip_layout(state, vit, source)
    return _from_dinov2_layout(state)


def _rgb(values: Sequence[float], owner: str, name: str) -> tuple[float, ...]:
    """Three RGB floats (a mean or std on the 0-1 scale), or a ValueError naming the argument."""
    if len(values) != 3:
        raise ValueError(f'{owner}: {name}={values!r}; expected three RGB values on the 0-1 '
                         'scale')
    return tuple(float(v) for v in values)


def _resolve_timm_weights(name: str, owner: str, key: str) -> str:
    """Local path of timm's hub file for ``name``: from the cache, else downloaded if online.

    ``owner`` and ``key`` (the config key of the weights) name the fix in the error raised when
    the file is neither cached nor downloadable.
    """
    from huggingface_hub import hf_hub_download

    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None or not cfg.hf_hub_id:
        arch = name.split('.')[0]
        raise KeyError(f"{owner}: model='{name}' has no timm hub weights; tagged names of "
                       f"this architecture: {timm.list_models(arch, pretrained=True)}")
    repo = cfg.hf_hub_id
    candidates = ('model.safetensors', 'pytorch_model.bin')
    offline = any(os.environ.get(var, '') not in ('', '0') for var in _OFFLINE_ENV)
    for local_only in (True, False) if not offline else (True,):
        for filename in candidates:
            try:
                return hf_hub_download(repo, filename, local_files_only=local_only)
            except Exception:  # the hub client's traceback says nothing a user can act on
                continue
    original = (f", or {key}='/path/to/{cfg.url.rsplit('/', 1)[-1]}' for the original "
                'checkpoint' if cfg.url else '')
    raise WeightsNotFoundError(
        f"{owner}: weights for model='{name}', pretrained='timm' are not available: "
        f'{repo}/{candidates[0]} on the Hugging Face Hub is not in the local cache'
        f"{' (offline mode)' if offline else ' and could not be downloaded'}. Download it on a "
        f"machine with internet access and pass its path: {key}='/path/to/{candidates[0]}'"
        f'{original}')


def build_timm_vit(model: str | nn.Module, pretrained: str | os.PathLike | None = None,
                   model_kwargs: dict | None = None, *, owner: str = 'DINOProxy',
                   key: str = 'pretrained') -> nn.Module:
    """A timm ViT in eval mode, the one loader of proxies and teachers.

    Args:
        model: timm model name with its tag, or a built timm ``VisionTransformer``.
        pretrained: None (random weights), ``'timm'`` (the tag's hub file, from the cache or
            downloaded unless offline; needs a name) or a local file (timm layout,
            facebookresearch's DINO / DINOv2, or an OpenAI / open_clip CLIP: see
            :func:`to_timm_layout`), read with ``weights_only=True`` and loaded strictly.
        model_kwargs: architecture overrides for ``timm.create_model`` (a CLIP tower's
            ``embed_dim``, ``depth``, ``num_heads``, ``act_layer='quick_gelu'``; tiny tests).
        owner: the caller, named in errors.
        key: the config key of ``pretrained``, named in the offline error's fix.
    """
    if not isinstance(model, str) and pretrained == 'timm':
        raise ValueError(f"{owner}: pretrained='timm' needs a timm model name, not a built "
                         'module')
    if not isinstance(model, str) and model_kwargs:
        raise ValueError(f'{owner}: model_kwargs apply to a timm model name, not a built module')
    if isinstance(model, str) and model.split('.')[0] not in timm.list_models():
        raise KeyError(f"{owner}: model='{model}' is not a timm model; DINO and DINOv2 names: "
                       f"{timm.list_models('*dino*', pretrained=True)}")
    path = None
    if pretrained is not None:  # find the file first: no model is built if it is missing
        path = (_resolve_timm_weights(model, owner, key) if pretrained == 'timm'
                else os.fspath(pretrained))
        _check_file(path, owner)
    vit = (timm.create_model(model, pretrained=False, num_classes=0, **(model_kwargs or {}))
           if isinstance(model, str) else model)
    if path is not None:
        state, _ = read_state_dict(path)
        load_state_dict_strict(vit, to_timm_layout(state, vit, path), source=path)
        logger.info('%s %s: weights %s', owner, model if isinstance(model, str) else
                    type(model).__name__, path)
    return vit.eval()


def default_pos_interp(name: str) -> PosInterp:
    """The position-embedding resize of the repository a timm name's weights come from: the
    DINOv2 hub's register models resize by size with antialiasing, DINO (and DINOv2 without
    registers) by DINO's ``scale_factor`` +0.1 form."""
    return 'size_antialias' if 'reg4_dinov2' in name else 'scale_factor'


@MODELS.register_module()
class DINOProxy(nn.Module):
    """A timm ViT as ProxyCLIP's proxy: normed last-layer patch tokens as a map.

    Args:
        model: timm model name with its tag (``'vit_base_patch8_224.dino'``,
            ``'vit_base_patch14_reg4_dinov2.lvd142m'``), or a built timm ``VisionTransformer``.
        pretrained: None (random weights), ``'timm'`` (the tag's hub file; needs a name) or a
            local file (timm layout, facebookresearch's DINO / DINOv2 checkpoints, or an
            OpenAI / open_clip CLIP checkpoint: see :func:`to_timm_layout`).
        pos_interp: how the position embedding follows the input size: ``'scale_factor'``,
            DINO's bicubic ``scale_factor=((I+0.1)/I0, (J+0.1)/J0)`` (dino
            vision_transformer.py ``interpolate_pos_encoding``; ProxyCLIP's default proxy), or
            ``'size_antialias'``, bicubic to the size with antialiasing (the DINOv2 hub's
            register models: ``interpolate_offset=0``, ``interpolate_antialias=True``; timm's
            own resize). None: :func:`default_pos_interp` of the name.
        model_kwargs: architecture overrides for ``timm.create_model`` (see
            :func:`build_timm_vit`).
        mean: RGB mean on the 0-1 scale the proxy's inputs are normalised with (default
            ImageNet's, DINO's; a CLIP tower wants ``open_clip.OPENAI_DATASET_MEAN``).
        std: the matching standard deviation.
    """

    mean = IMAGENET_DEFAULT_MEAN  # class defaults; an instance may override them
    std = IMAGENET_DEFAULT_STD

    def __init__(self, model: str | nn.Module = 'vit_base_patch8_224.dino',
                 pretrained: str | os.PathLike | None = None,
                 pos_interp: PosInterp | None = None, model_kwargs: dict | None = None,
                 mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
                 std: Sequence[float] = IMAGENET_DEFAULT_STD) -> None:
        super().__init__()
        self.mean = _rgb(mean, 'DINOProxy', 'mean')
        self.std = _rgb(std, 'DINOProxy', 'std')
        vit = build_timm_vit(model, pretrained, model_kwargs)
        if pos_interp is None:
            pos_interp = default_pos_interp(model if isinstance(model, str) else '')
        if pos_interp not in ('scale_factor', 'size_antialias'):
            raise ValueError(f"DINOProxy: pos_interp={pos_interp!r}; expected 'scale_factor' "
                             "or 'size_antialias'")
        self.vit = vit.eval()
        self.pos_interp = pos_interp
        self.patch_size = vit.patch_embed.patch_size[0]

    def _pos_embed(self, grid: tuple[int, int]) -> Tensor:
        vit = self.vit
        prefix = 0 if vit.no_embed_class else vit.num_prefix_tokens
        old_grid = tuple(vit.patch_embed.grid_size)
        if self.pos_interp == 'scale_factor':
            return resample_pos_embed(vit.pos_embed[0], grid, old_grid=old_grid,
                                      num_prefix_tokens=prefix, mode='scale_factor')
        return resample_abs_pos_embed(vit.pos_embed, list(grid), old_size=list(old_grid),
                                      num_prefix_tokens=prefix, antialias=True)[0]

    def _embed(self, images: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """Tokens entering the first block (after ``norm_pre``), (B, P + IJ, C), and (I, J)."""
        vit = self.vit
        p = self.patch_size
        if images.ndim != 4 or images.shape[-2] % p or images.shape[-1] % p:
            raise ValueError(f'DINOProxy: input {tuple(images.shape)}; expected (B, 3, H, W) '
                             f'with H and W divisible by the patch size {p}')
        x = vit.patch_embed.proj(images)  # (B, C, I, J)
        B, C, I, J = x.shape
        x = vit.patch_embed.norm(x.flatten(2).transpose(1, 2))  # (B, IJ, C)
        pos = self._pos_embed((I, J)).to(x.dtype)  # (P' + IJ, C)
        prefix = [t.expand(B, -1, -1) for t in (vit.cls_token, vit.reg_token) if t is not None]
        if vit.no_embed_class:  # patches carry the embedding; prefix tokens hold theirs
            x = torch.cat(prefix + [x + pos], dim=1)  # (B, P + IJ, C)
        else:
            x = torch.cat(prefix + [x], dim=1) + pos  # (B, P + IJ, C)
        return vit.norm_pre(vit.patch_drop(vit.pos_drop(x))), (I, J)

    def forward(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) normalised with ``mean``/``std``, H and W divisible by the patch size ->
        (B, C, H/p, W/p) last-layer patch features."""
        vit = self.vit
        x, grid = self._embed(images)
        x = vit.norm(vit.blocks(x))
        x = x[:, vit.num_prefix_tokens:]  # (B, IJ, C)
        B, _, C = x.shape
        return x.transpose(1, 2).reshape(B, C, *grid)  # (B, C, I, J)

    def forward_qk(self, images: Tensor) -> Tensor:
        """The last block's q + k of the patch tokens, as a map (B, C, H/p, W/p).

        CorrCLIP's correlation features (corrclip_segmentor.py@103bc18 ``forward_feature``:
        a forward hook on ``dino.blocks[-1].attn.qkv``, ``qkv[0] + qkv[1]``, [CLS] dropped):
        the last block's ``qkv`` linear on its ``norm1`` input, all heads side by side, before
        any per-head q/k norm (DINO has none). Same input rules as :meth:`forward`.
        """
        vit = self.vit
        x, grid = self._embed(images)
        for block in vit.blocks[:-1]:
            x = block(x)
        last = vit.blocks[-1]
        qkv = last.attn.qkv(last.norm1(x))  # (B, T, 3C'), q | k | v
        B, T, _ = qkv.shape
        q, k, _ = qkv.reshape(B, T, 3, -1).unbind(2)  # (B, T, C') each
        qk = (q + k)[:, vit.num_prefix_tokens:]  # (B, IJ, C')
        return qk.transpose(1, 2).reshape(B, -1, *grid)  # (B, C', I, J)


def build_sam(model_type: str, checkpoint: str | os.PathLike | None = None,
              owner: str = 'SAM') -> nn.Module:
    """The whole segment-anything ``Sam`` (image encoder, prompt encoder, mask decoder) of
    ``model_type``, loaded strictly from ``checkpoint`` (``weights_only=True``; segment-anything's
    own loader is not strict); None: random weights. ``owner`` names the caller in errors."""
    try:
        from segment_anything import sam_model_registry
    except ImportError:
        raise ImportError(f"{owner} needs segment-anything: pip install 'denseclip[demo]' or "
                          'pip install segment-anything') from None
    if model_type not in sam_model_registry or model_type == 'default':
        raise KeyError(f'{owner}: SAM model_type={model_type!r}; known: '
                       f"{sorted(k for k in sam_model_registry if k != 'default')}")
    if checkpoint is not None:
        _check_file(checkpoint, owner)  # before building a ViT-H for nothing
    sam = sam_model_registry[model_type](checkpoint=None)
    if checkpoint is not None:
        state, _ = read_state_dict(checkpoint)
        load_state_dict_strict(sam, state, source=os.fspath(checkpoint))
    return sam.eval()


@MODELS.register_module()
class SAMProxy(nn.Module):
    """segment-anything's image encoder as ProxyCLIP's proxy.

    Args:
        model_type: a ``segment_anything.sam_model_registry`` key (``'vit_b'``, ``'vit_l'``,
            ``'vit_h'``), or a built ``ImageEncoderViT``.
        checkpoint: None (random weights) or a SAM checkpoint file (the whole model, as
            released), loaded strictly with ``weights_only=True``.
    """

    # Normalising with SAM's pixel mean/std on 0-255 equals ImageNet's on the 0-1 scale, which
    # is what ProxyCLIP applies before the encoder.
    mean = tuple(m / 255 for m in SAM_PIXEL_MEAN)
    std = tuple(s / 255 for s in SAM_PIXEL_STD)

    def __init__(self, model_type: str | nn.Module = 'vit_b',
                 checkpoint: str | os.PathLike | None = None) -> None:
        super().__init__()
        if isinstance(model_type, nn.Module):
            if checkpoint is not None:
                raise ValueError('SAMProxy: pass either a built encoder or model_type= with '
                                 'checkpoint=, not both')
            self.encoder = model_type.eval()
            return
        sam = build_sam(model_type, checkpoint, 'SAMProxy')
        self.encoder = sam.image_encoder.eval()

    def forward(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) SAM-normalised -> (B, 256, 64, 64) neck features of the image resized
        (bilinear, aspect not kept) to the encoder's square input size."""
        size = self.encoder.img_size
        images = F.interpolate(images, size=(size, size), mode='bilinear', align_corners=False)
        return self.encoder(images)
