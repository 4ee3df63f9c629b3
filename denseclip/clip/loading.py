"""Loading CLIP: open_clip names and tags, local files, or random weights.

One path for every source (DESIGN.md §4 "Loading weights"):

* ``model`` is an open_clip model name (``'ViT-B-16'``), the path of an open_clip model-config
  JSON (the toy CLIP ships one), or ``None`` (architecture inferred from an OpenAI-format state
  dict, as OpenAI's ``build_model`` does).
* ``pretrained`` is an open_clip tag (``'openai'``, ``'laion2b_s34b_b88k'``), a local file
  (``.pt``/``.pth``/``.bin``/``.safetensors``, OpenAI JIT archives too), a Hugging Face
  ``CLIPModel`` directory or file (converted by :mod:`denseclip.clip.hf`; ``model`` None or its
  ``config.json``) or ``None`` (random init).

Files are read with ``weights_only=True`` and loaded strictly: a missing or unexpected key or a
shape mismatch raises and lists the keys. Activation rule: the ``openai`` tag, an OpenAI JIT
archive and an inferred architecture mean QuickGELU; an open_clip model name means that config's
activation; a Hugging Face config means its ``hidden_act`` (``quick_gelu`` or ``gelu``).
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import socket
import urllib.parse
import zipfile
from dataclasses import dataclass
from pathlib import Path

import open_clip
import torch
from open_clip.model import CLIP, CustomTextCLIP, convert_to_custom_text_state_dict

from .hf import CONFIG_NAME as HF_CONFIG
from .hf import hf_clip_checkpoint

logger = logging.getLogger(__name__)

# Buffers and attributes OpenAI's JIT archives carry next to the weights.
_JIT_EXTRA_KEYS = ('input_resolution', 'context_length', 'vocab_size')
_OFFLINE_ENV = ('DENSECLIP_OFFLINE', 'HF_HUB_OFFLINE')
_MAX_LISTED = 10


class WeightsNotFoundError(FileNotFoundError):
    """The weights a tag names are neither cached nor reachable."""


@dataclass(frozen=True)
class CLIPSource:
    """Where a loaded CLIP came from, for logs, caches and error messages."""

    model: str  # open_clip name, config file, or 'inferred:<arch>'
    pretrained: str | None  # tag or file path
    checkpoint: str | None  # the file the weights were read from
    quick_gelu: bool
    config: dict | None = None  # the model config the CLIP was built from, activation included

    @property
    def tokenizer_name(self) -> str:
        """The open_clip model whose tokenizer encodes this CLIP's text: its own name, else
        CLIP's BPE (model-config files and inferred OpenAI architectures use it)."""
        return self.model if self.model in open_clip.list_models() else 'ViT-B-16'

    @property
    def identity(self) -> str | None:
        """A key that changes whenever the text embeddings can: the built model config (so
        the activation, an in-place edit of a config file, the context length), the
        tokenizer and the weights' content; None for random or unknown weights."""
        if self.checkpoint is None or self.config is None:
            return None
        from denseclip.models.text.classifier import file_fingerprint  # a leaf of the text side

        payload = json.dumps({'config': self.config, 'tokenizer': self.tokenizer_name},
                             sort_keys=True, default=str)
        config = hashlib.sha256(payload.encode()).hexdigest()[:16]
        return f'{config}|{file_fingerprint(self.checkpoint)}'


def read_state_dict(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], bool]:
    """Read a checkpoint file into a flat state dict.

    Args:
        path: ``.safetensors``, a torch file (``.pt``/``.pth``/``.bin``) holding a state dict,
            optionally wrapped in ``{'state_dict': ...}`` and/or prefixed ``module.``, or an
            OpenAI TorchScript (JIT) archive.

    Returns:
        The state dict and whether the file was a JIT archive.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'CLIP weights file not found: {path}')
    is_jit = False
    try:
        if path.suffix == '.safetensors':
            from safetensors.torch import load_file

            state = load_file(str(path), device='cpu')
        elif _is_torchscript(path):
            is_jit = True
            state = torch.jit.load(str(path), map_location='cpu').state_dict()
        else:
            state = torch.load(str(path), map_location='cpu', weights_only=True)
    except Exception as err:  # the file is corrupt or not a checkpoint at all
        raise ValueError(
            f'{path}: cannot read CLIP weights ({type(err).__name__}: {err}); expected a '
            '.safetensors file, a torch state dict or an OpenAI JIT archive') from None
    for wrapper in ('state_dict', 'model'):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f'{path}: expected a state dict of tensors, got {type(state).__name__}')
    if all(key.startswith('module.') for key in state):
        state = {key[len('module.'):]: value for key, value in state.items()}
    for key in _JIT_EXTRA_KEYS:
        state.pop(key, None)
    return dict(state), is_jit


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith('constants.pkl') for name in archive.namelist())


def infer_openai_config(state: dict[str, torch.Tensor]) -> dict:
    """Infer an open_clip model config from an OpenAI-format CLIP state dict.

    The same rules as OpenAI's ``clip/model.py::build_model``: heads are width // 64 (ViT) or
    width * 32 // 64 (ModifiedResNet), since head counts are not stored in the weights.

    Returns:
        A dict of ``open_clip.model.CLIP`` keyword arguments (``quick_gelu=True``).
    """
    if 'text_projection' not in state or 'token_embedding.weight' not in state:
        raise KeyError('cannot infer a CLIP architecture: the state dict has no '
                       "'text_projection'/'token_embedding.weight'; pass model=<open_clip name>")
    if 'visual.proj' in state:  # ViT
        width = state['visual.conv1.weight'].shape[0]
        patch = state['visual.conv1.weight'].shape[-1]
        layers = sum(1 for k in state
                     if k.startswith('visual.') and k.endswith('attn.in_proj_weight'))
        grid = round((state['visual.positional_embedding'].shape[0] - 1) ** 0.5)
        vision = dict(image_size=grid * patch, patch_size=patch, width=width, layers=layers,
                      head_width=64)
    elif 'visual.attnpool.positional_embedding' in state:  # ModifiedResNet
        layers = tuple(
            len({k.split('.')[2] for k in state if k.startswith(f'visual.layer{i}.')})
            for i in (1, 2, 3, 4))
        width = state['visual.layer1.0.conv1.weight'].shape[0]
        grid = round((state['visual.attnpool.positional_embedding'].shape[0] - 1) ** 0.5)
        vision = dict(image_size=grid * 32, layers=layers, width=width, head_width=64)
    else:
        raise KeyError("cannot infer the image tower: neither 'visual.proj' (ViT) nor "
                       "'visual.attnpool.positional_embedding' (ResNet) is in the state dict")
    text_width = state['ln_final.weight'].shape[0]
    text = dict(
        context_length=state['positional_embedding'].shape[0],
        vocab_size=state['token_embedding.weight'].shape[0],
        width=text_width,
        heads=text_width // 64,
        layers=len({k.split('.')[2] for k in state if k.startswith('transformer.resblocks.')}),
    )
    return dict(embed_dim=state['text_projection'].shape[1], vision_cfg=vision, text_cfg=text,
                quick_gelu=True)


def load_state_dict_strict(module: torch.nn.Module, state: dict[str, torch.Tensor],
                           source: str) -> None:
    """``module.load_state_dict(state, strict=True)`` with an error that lists what differs."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f'{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}'
                  for k in own if k in state and state[k].shape != own[k].shape]
    problems = []
    for title, keys in (('missing', missing), ('unexpected', unexpected),
                        ('shape mismatch', mismatched)):
        if keys:
            more = f' (+{len(keys) - _MAX_LISTED} more)' if len(keys) > _MAX_LISTED else ''
            problems.append(f'{title} ({len(keys)}): {keys[:_MAX_LISTED]}{more}')
    if problems:
        raise ValueError(f'{source}: weights do not match the architecture; '
                         + '; '.join(problems))
    module.load_state_dict(state, strict=True)


def _resolve_tag(name: str, tag: str) -> str:
    """The local path of the weights an open_clip tag names, downloading if allowed."""
    cfg = open_clip.get_pretrained_cfg(name, tag)
    if not cfg:
        raise KeyError(f"pretrained='{tag}' is neither a file nor an open_clip tag of '{name}'; "
                       f'known tags: {open_clip.list_pretrained_tags_by_model(name)}')
    where = cfg.get('hf_hub') or cfg.get('url') or '?'
    if cfg.get('hf_hub'):
        from huggingface_hub import hf_hub_download

        repo, filename = os.path.split(cfg['hf_hub'])  # 'org/name/' or 'org/name/file.bin'
        candidates = [filename] if filename else ['open_clip_model.safetensors',
                                                  'open_clip_pytorch_model.bin']
        for candidate in candidates:
            try:
                return hf_hub_download(repo, candidate, local_files_only=True)
            except Exception:  # not cached: try the next name, then the network
                continue
        where = f'{repo}/{candidates[-1]} on the Hugging Face Hub'
    offline = any(os.environ.get(var, '') not in ('', '0') for var in _OFFLINE_ENV)
    reason = ' (offline mode)' if offline else ' and could not be downloaded'
    if not offline:
        host = _download_host(cfg)
        if _reachable(host):
            try:
                return open_clip.download_pretrained(cfg)
            except Exception:  # the hub client's own traceback says nothing a user can act on
                pass
        else:  # the hub client would retry for most of a minute before failing
            reason = f' and {host} cannot be reached (no network?)'
    raise WeightsNotFoundError(
        f"CLIP weights for model='{name}', pretrained='{tag}' are not available: {where} is "
        f"not in the local cache{reason}. Download the file on a machine with internet access "
        f"and pass its path: "
        f"pretrained='/path/to/{os.path.basename(where.split(' ')[0]) or 'weights.bin'}'")


def _download_host(cfg: dict) -> str:
    """The host a pretrained config downloads from."""
    if cfg.get('hf_hub'):
        endpoint = os.environ.get('HF_ENDPOINT', 'https://huggingface.co')
        return urllib.parse.urlparse(endpoint).hostname or 'huggingface.co'
    return urllib.parse.urlparse(cfg.get('url', '')).hostname or ''


def _reachable(host: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``host``:443 opens within ``timeout`` seconds."""
    if not host:
        return False
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def load_clip(model: str | os.PathLike | None = 'ViT-B-16',
              pretrained: str | os.PathLike | None = None
              ) -> tuple[CLIP | CustomTextCLIP, CLIPSource]:
    """Build an open_clip CLIP and load its weights.

    Args:
        model: open_clip model name, path of an open_clip model-config JSON, or None to infer
            the architecture from an OpenAI-format state dict given as ``pretrained``.
        pretrained: open_clip tag, local weights file, Hugging Face CLIP directory (with
            ``model=None``), or None for random weights.

    Returns:
        The model in eval mode and a :class:`CLIPSource` describing what was loaded.
    """
    pretrained = os.fspath(pretrained) if pretrained is not None else None
    is_file = pretrained is not None and (os.path.sep in pretrained or os.path.isfile(pretrained)
                                          or Path(pretrained).suffix in _WEIGHT_SUFFIXES
                                          or os.path.isfile(os.path.join(pretrained, HF_CONFIG)))
    checkpoint = state = hf = None
    is_jit = False
    if is_file:
        checkpoint = pretrained
        if not os.path.isdir(pretrained):
            state, is_jit = read_state_dict(checkpoint)
        # Hugging Face (transformers) CLIP: a directory or a file of its keys (hf.py)
        hf = hf_clip_checkpoint(model, pretrained, state)

    if hf is not None:
        name, cfg, state, checkpoint, quick_gelu = (hf.name, hf.config, hf.state, hf.checkpoint,
                                                    hf.quick_gelu)
    elif model is None:
        if state is None:
            raise ValueError('model=None needs pretrained=<OpenAI-format state dict file> to '
                             'infer the architecture from; or pass an open_clip model name')
        cfg = infer_openai_config(state)
        vision = cfg['vision_cfg']
        name = ('inferred:RN' if isinstance(vision['layers'], tuple) else
                f"inferred:ViT-p{vision['patch_size']}-w{vision['width']}-l{vision['layers']}")
        quick_gelu = True
    elif str(model).endswith('.json'):
        if not os.path.isfile(model):
            raise FileNotFoundError(f'model config file not found: {model}')
        cfg = json.loads(Path(model).read_text())
        name, quick_gelu = os.fspath(model), bool(cfg.get('quick_gelu', False) or is_jit)
        cfg['quick_gelu'] = quick_gelu
    else:
        name = str(model)
        cfg = open_clip.get_model_config(name)
        if cfg is None:
            raise KeyError(f"model='{name}' is not an open_clip model config; "
                           f'known: {open_clip.list_models()}')
        quick_gelu = bool(cfg.get('quick_gelu', False)) or is_jit
        if pretrained is not None and not is_file:
            tag_cfg = open_clip.get_pretrained_cfg(name, pretrained)
            quick_gelu = quick_gelu or bool(tag_cfg.get('quick_gelu', False))
            checkpoint = _resolve_tag(name, pretrained)
            state, _ = read_state_dict(checkpoint)
        cfg = dict(cfg, quick_gelu=quick_gelu)

    if 'multimodal_cfg' in cfg:
        raise ValueError(f'{name}: captioning (CoCa) models are not supported')
    # EVA / SigLIP style towers (timm image tower or HF text tower) use CustomTextCLIP.
    custom_text = cfg.pop('custom_text', False) or 'hf_model_name' in cfg['text_cfg']
    clip = (CustomTextCLIP if custom_text else CLIP)(**cfg)
    if state is not None:
        load_state_dict_strict(clip, _to_open_clip_layout(clip, state), source=str(checkpoint))
    clip.eval()
    logger.info('CLIP %s: weights %s, activation %s', name, checkpoint or 'random',
                'QuickGELU' if quick_gelu else 'GELU')
    return clip, CLIPSource(model=name, pretrained=pretrained, checkpoint=checkpoint,
                            quick_gelu=quick_gelu, config=copy.deepcopy(cfg))


_WEIGHT_SUFFIXES = ('.pt', '.pth', '.bin', '.safetensors', '.ckpt')


def _to_open_clip_layout(clip: CLIP, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a state dict onto ``clip``'s key layout.

    OpenAI and open_clip CLIPs share one layout; towers of CustomTextCLIP live under ``text.``;
    ``logit_scale`` is a scalar in some files and 1-d in others.
    """
    if 'positional_embedding' in state and not hasattr(clip, 'positional_embedding'):
        state = convert_to_custom_text_state_dict(state)
    own = clip.state_dict()
    # Non-persistent buffers (the text causal mask) are rebuilt by the model; JIT archives and
    # traced models carry them in their state dict.
    recomputed = {name for name, _ in clip.named_buffers()} - set(own)
    out = {}
    for key, value in state.items():
        if key in recomputed:
            continue
        if key in own and own[key].ndim != value.ndim and own[key].numel() == value.numel():
            value = value.reshape(own[key].shape)
        out[key] = value.float() if value.is_floating_point() else value
    return out
