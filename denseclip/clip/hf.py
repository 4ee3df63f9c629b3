"""Hugging Face CLIP checkpoints (transformers' ``CLIPModel`` layout) in open_clip's layout.

MetaCLIP 2, Long-CLIP and FG-CLIP ship as transformers ``CLIPModel`` (or ``MetaClip2Model``,
the same layout) directories: ``config.json`` plus ``model.safetensors`` or
``pytorch_model.bin``. They are OpenAI's CLIP with renamed keys and split q/k/v projections, so
an open_clip ``CLIP`` built from ``config.json`` reproduces them exactly (FG-CLIP's extra
long-text branch is left out: :data:`FGCLIP_LONG_TEXT_KEYS`). This module reads the config and
the tensors itself (no ``transformers`` at run time), renames by an explicit table and checks
every key both ways. :func:`denseclip.clip.load_clip` routes here when ``pretrained`` is such a
directory or a file of its keys.

Rules (read from transformers 5.24 ``models/clip/modeling_clip.py`` and
``models/metaclip_2/modeling_metaclip_2.py``):

* activation: ``hidden_act='quick_gelu'`` means open_clip ``quick_gelu=True``, ``'gelu'`` (erf)
  means ``False``; both towers must agree (open_clip has one flag); others are refused.
* text pooling: ``CLIPTextModel`` pools at ``input_ids.argmax(-1)`` when ``eos_token_id == 2``
  (configs written before transformers PR #24773) and otherwise at the first ``eos_token_id``;
  ``MetaClip2TextModel`` always pools at the first ``eos_token_id``. These are open_clip's
  ``pool_type='argmax'`` and ``pool_type='eos'`` (with ``eos_id``); a missing or multi-valued
  ``eos_token_id`` is refused.
* towers whose text side is not CLIP's transformer (Chinese-CLIP: BERT) or that have none
  (``CLIPVisionModelWithProjection``) convert the image tower only
  (:func:`load_hf_clip_visual`, ``tools/model_converters/hf_clip.py --vision-only``).
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ['HFCLIPCheckpoint', 'hf_clip_checkpoint', 'hf_to_open_clip_config',
           'convert_hf_clip_state', 'read_hf_clip', 'load_hf_clip_visual', 'is_hf_clip_state']

logger = logging.getLogger(__name__)

CONFIG_NAME = 'config.json'
WEIGHTS_NAMES = ('model.safetensors', 'pytorch_model.bin')
SHARD_INDEX_NAMES = ('model.safetensors.index.json', 'pytorch_model.bin.index.json')
# model_types whose two towers convert; then those whose image tower alone does, and why.
FULL_TYPES = ('clip', 'metaclip_2')
VISION_ONLY_TYPES = {
    'chinese_clip': "a Chinese-CLIP model: its text tower is BERT, not CLIP's text transformer",
    'clip_vision_model': 'a CLIPVisionModel(WithProjection): it has no text tower',
    'metaclip_2_vision_model': 'a MetaClip2VisionModel(WithProjection): it has no text tower',
}
# transformers' defaults for the keys read here (CLIPTextConfig / CLIPVisionConfig, the same in
# MetaClip2*Config), used where a config.json leaves a key out.
TEXT_DEFAULTS = dict(vocab_size=49408, hidden_size=512, intermediate_size=2048,
                     num_hidden_layers=12, num_attention_heads=8, max_position_embeddings=77,
                     hidden_act='quick_gelu', layer_norm_eps=1e-5, eos_token_id=49407)
VISION_DEFAULTS = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                       num_attention_heads=12, num_channels=3, image_size=224, patch_size=32,
                       hidden_act='quick_gelu', layer_norm_eps=1e-5)
PROJECTION_DIM_DEFAULT = 512
ACTIVATIONS = {'quick_gelu': True, 'gelu': False}  # HF hidden_act -> open_clip quick_gelu
CLIP_BPE_VOCAB = 49408  # open_clip's CLIP tokenizer, the one denseclip's text side uses
# Non-persistent in current transformers, saved by older versions; rebuilt as arange.
_POSITION_IDS = ('vision_model.embeddings.position_ids', 'text_model.embeddings.position_ids')
_OPEN_CLIP_LN_EPS = 1e-5
# FG-CLIP (360CVGroup/FG-CLIP fgclip/model/clip_strc/fgclip.py@2bc1962, ``FGCLIPModel``) is a
# CLIPModel plus a long-text branch (248 positions mixed from two tables, its own projection)
# and two training-only logit scales. Its default ``get_text_features(walk_short_pos=True)`` and
# ``get_image_features`` are plain CLIP, which is what converts; its __init__ fixes the
# end-of-text id to 49407 whatever config.json says.
FGCLIP_LONG_TEXT_KEYS = ('text_model.embeddings.position_embedding_res.weight',
                         'text_model.embeddings.position_embedding_ori.weight',
                         'text_filip_projection.weight', 'logit_scale_finegraind',
                         'logit_scale_hardneg')
FGCLIP_EOS_ID = 49407


@dataclass
class HFCLIPCheckpoint:
    """A Hugging Face CLIP checkpoint converted to open_clip's layout."""

    name: str  # 'hf:<config.json path>', the model name a CLIPSource records
    config: dict  # open_clip CLIP kwargs (embed_dim, vision_cfg, text_cfg, quick_gelu)
    state: dict[str, torch.Tensor]  # open_clip keys, dtype as stored
    checkpoint: str  # the weights file read
    quick_gelu: bool


def is_hf_clip_state(state: dict[str, torch.Tensor]) -> bool:
    """Whether ``state`` has transformers' CLIP keys (``vision_model.``/``text_model.``)."""
    return ('vision_model.embeddings.patch_embedding.weight' in state
            or 'text_model.embeddings.token_embedding.weight' in state)


def _is_hf_config(cfg: dict) -> bool:
    return 'model_type' in cfg or 'vision_config' in cfg or 'text_config' in cfg


def is_fgclip(config: dict) -> bool:
    """Whether a transformers config names FG-CLIP's ``FGCLIPModel`` (architectures/auto_map)."""
    names = [str(n) for n in config.get('architectures') or []]
    names += [str(v) for v in (config.get('auto_map') or {}).values()]
    return any('FGCLIPModel' in name for name in names)


def _sub_config(config: dict, key: str, defaults: dict) -> dict:
    """A tower's config as transformers builds it: defaults, then ``<key>``, then (configs
    written by old transformers) ``<key>_dict`` completed with defaults
    (``CLIPConfig.__post_init__``)."""
    out = {**defaults, **(config.get(key) or {})}
    legacy = config.get(f'{key}_dict')
    if legacy:
        out.update({**defaults, **legacy})
    return out


def _size(value, what: str, source: str) -> int:
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or value[0] != value[1]:
            raise ValueError(f'{source}: {what}={value}; only square sizes are supported '
                             '(transformers CLIP counts patches as (size // patch) ** 2)')
        value = value[0]
    return int(value)


def _tower_common(tower: dict, what: str, source: str) -> dict:
    """open_clip keys shared by both towers: mlp_ratio, norm_kwargs; checks head width."""
    width, heads = tower['hidden_size'], tower['num_attention_heads']
    if width % heads:
        raise ValueError(f'{source}: {what}.hidden_size={width} is not divisible by '
                         f'num_attention_heads={heads}')
    mlp_ratio = tower['intermediate_size'] / width
    if int(width * mlp_ratio) != tower['intermediate_size']:  # open_clip: int(width * ratio)
        raise ValueError(f'{source}: {what}.intermediate_size={tower["intermediate_size"]} is '
                         f'not reproducible as int(hidden_size * mlp_ratio) in open_clip')
    out = dict(width=width, layers=tower['num_hidden_layers'], mlp_ratio=mlp_ratio)
    eps = float(tower['layer_norm_eps'])
    if eps != _OPEN_CLIP_LN_EPS:
        out['norm_kwargs'] = dict(eps=eps)
    return out


def _activation(towers: dict[str, dict], source: str) -> bool:
    acts = {what: tower['hidden_act'] for what, tower in towers.items()}
    for what, act in acts.items():
        if act not in ACTIVATIONS:
            raise ValueError(f"{source}: {what}.hidden_act='{act}' has no open_clip "
                             f'equivalent; supported: {sorted(ACTIVATIONS)}')
    if len(set(acts.values())) > 1:
        raise ValueError(f'{source}: the towers use different activations {acts}; open_clip '
                         'builds both with one (quick_gelu=True/False)')
    return ACTIVATIONS[next(iter(acts.values()))]


def text_pooling(model_type: str, eos_token_id, source: str) -> dict:
    """open_clip ``text_cfg`` keys that pool where transformers' text model pools.

    Returns:
        ``{'pool_type': 'argmax'}`` for a ``clip`` config with the legacy ``eos_token_id=2``,
        else ``{'pool_type': 'eos', 'eos_id': eos_token_id}`` (first occurrence).
    """
    if isinstance(eos_token_id, (list, tuple)):
        if len(eos_token_id) != 1:
            raise ValueError(f'{source}: text_config.eos_token_id={eos_token_id}: transformers '
                             'pools at one end-of-text id; open_clip cannot reproduce several')
        eos_token_id = eos_token_id[0]
    if not isinstance(eos_token_id, int) or isinstance(eos_token_id, bool):
        raise ValueError(f'{source}: text_config.eos_token_id={eos_token_id!r}; the text tower '
                         'pools at the end-of-text token, so an integer id is required')
    if model_type == 'clip' and eos_token_id == 2:  # CLIPTextModel's pre-#24773 branch
        return dict(pool_type='argmax')
    return dict(pool_type='eos', eos_id=eos_token_id)


def hf_to_open_clip_config(config: dict, *, vision_only: bool = False,
                           source: str = 'config.json') -> dict:
    """open_clip ``CLIP`` keyword arguments from a transformers CLIP ``config.json``.

    Args:
        config: the parsed ``config.json`` of a ``CLIPModel``, ``MetaClip2Model``,
            ``ChineseCLIPModel`` or ``CLIPVisionModelWithProjection``.
        vision_only: build the image tower's config only (no ``text_cfg``).
        source: the file, for error messages.

    Returns:
        ``dict(embed_dim, vision_cfg, [text_cfg,] quick_gelu)``.
    """
    model_type = config.get('model_type', 'clip')
    if model_type not in FULL_TYPES and model_type not in VISION_ONLY_TYPES:
        raise ValueError(f"{source}: model_type='{model_type}' is not a standard CLIP; supported: "
                         f'{list(FULL_TYPES)} (both towers), {sorted(VISION_ONLY_TYPES)} '
                         '(image tower only)')
    if model_type in VISION_ONLY_TYPES and not vision_only:
        raise ValueError(f'{source}: {VISION_ONLY_TYPES[model_type]}; only its image tower '
                         'converts: denseclip.clip.hf.load_hf_clip_visual(path) or '
                         'tools/model_converters/hf_clip.py --vision-only')
    if model_type.endswith('_vision_model'):  # a tower saved alone: its keys at the top level
        vision = {**VISION_DEFAULTS, **config}
    else:
        vision = _sub_config(config, 'vision_config', VISION_DEFAULTS)
    if vision['num_channels'] != 3:
        raise ValueError(f"{source}: vision_config.num_channels={vision['num_channels']}; "
                         'open_clip ViTs take RGB (3)')
    towers = {'vision_config': vision}
    common = _tower_common(vision, 'vision_config', source)
    vision_cfg = dict(
        image_size=_size(vision['image_size'], 'vision_config.image_size', source),
        patch_size=_size(vision['patch_size'], 'vision_config.patch_size', source),
        head_width=vision['hidden_size'] // vision['num_attention_heads'], **common)
    out = dict(embed_dim=int(config.get('projection_dim') or PROJECTION_DIM_DEFAULT),
               vision_cfg=vision_cfg)
    if not vision_only:
        text = _sub_config(config, 'text_config', TEXT_DEFAULTS)
        towers['text_config'] = text
        out['text_cfg'] = dict(
            context_length=text['max_position_embeddings'], vocab_size=text['vocab_size'],
            heads=text['num_attention_heads'], **_tower_common(text, 'text_config', source),
            **text_pooling(model_type, FGCLIP_EOS_ID if is_fgclip(config) else
                           text['eos_token_id'], source))
    out['quick_gelu'] = _activation(towers, source)
    return out


# HF CLIPEncoderLayer module -> open_clip ResidualAttentionBlock module (q/k/v apart).
_BLOCK_MODULES = (('layer_norm1', 'ln_1'), ('layer_norm2', 'ln_2'),
                  ('self_attn.out_proj', 'attn.out_proj'), ('mlp.fc1', 'mlp.c_fc'),
                  ('mlp.fc2', 'mlp.c_proj'))


def _block_rules(hf: str, oc: str) -> list[tuple[str, str]]:
    """(HF key, open_clip key) pairs of one encoder layer, q/k/v excepted."""
    return [(f'{hf}.{a}.{p}', f'{oc}.{b}.{p}') for a, b in _BLOCK_MODULES
            for p in ('weight', 'bias')]


def _tower_rules(hf: str, oc: str, layers: int, ends: list[tuple[str, str]]):
    """Renames and q/k/v concatenations of one tower."""
    renames = [(f'{hf}.{a}', f'{oc}{b}') for a, b in ends]
    concats = []
    for i in range(layers):
        block_hf, block_oc = f'{hf}.encoder.layers.{i}', f'{oc}transformer.resblocks.{i}'
        renames += _block_rules(block_hf, block_oc)
        for p in ('weight', 'bias'):  # nn.MultiheadAttention's in_proj is [q; k; v]
            concats.append(([f'{block_hf}.self_attn.{x}_proj.{p}' for x in 'qkv'],
                            f'{block_oc}.attn.in_proj_{p}'))
    return renames, concats


def convert_hf_clip_state(state: dict[str, torch.Tensor], cfg: dict, *,
                          vision_only: bool = False, drop: tuple[str, ...] = (),
                          source: str = 'checkpoint') -> dict[str, torch.Tensor]:
    """Rename a transformers CLIP state dict to open_clip's ``CLIP`` layout.

    Args:
        state: the checkpoint's tensors (``vision_model.*``, ``text_model.*``,
            ``visual_projection.weight``, ``text_projection.weight``, ``logit_scale``).
        cfg: :func:`hf_to_open_clip_config`'s output (gives the layer counts).
        vision_only: keep the image tower (``visual.*``); the text tower's keys, whatever
            architecture, and ``logit_scale`` are dropped.
        drop: keys of a known variant's extra branch to leave out (FG-CLIP's long text).
        source: the file, for error messages.

    Returns:
        open_clip keys; projections transposed (``x @ proj`` for HF's ``Linear(x)``); the
        ``Linear`` weights of q, k, v stacked into ``in_proj_weight`` (3W, W).

    Raises:
        KeyError: a key the layout needs is missing, or a key no rule covers (up to 10 named).
    """
    state = {k: v for k, v in state.items() if k not in _POSITION_IDS and k not in drop}
    renames, concats = _tower_rules(
        'vision_model', 'visual.', cfg['vision_cfg']['layers'],
        [('embeddings.class_embedding', 'class_embedding'),
         ('embeddings.patch_embedding.weight', 'conv1.weight'),  # HF's conv has no bias either
         ('embeddings.position_embedding.weight', 'positional_embedding'),
         ('pre_layrnorm.weight', 'ln_pre.weight'), ('pre_layrnorm.bias', 'ln_pre.bias'),
         ('post_layernorm.weight', 'ln_post.weight'), ('post_layernorm.bias', 'ln_post.bias')])
    transposed = [('visual_projection.weight', 'visual.proj')]
    if vision_only:
        state = {k: v for k, v in state.items()
                 if not k.startswith('text_model.') and k not in ('text_projection.weight',
                                                                 'logit_scale')}
    else:
        text_renames, text_concats = _tower_rules(
            'text_model', '', cfg['text_cfg']['layers'],
            [('embeddings.token_embedding.weight', 'token_embedding.weight'),
             ('embeddings.position_embedding.weight', 'positional_embedding'),
             ('final_layer_norm.weight', 'ln_final.weight'),
             ('final_layer_norm.bias', 'ln_final.bias')])
        renames += text_renames + [('logit_scale', 'logit_scale')]
        concats += text_concats
        transposed.append(('text_projection.weight', 'text_projection'))
    needed = ([a for a, _ in renames + transposed] + [k for keys, _ in concats for k in keys])
    missing = [k for k in needed if k not in state]
    if missing:
        raise KeyError(f'{source}: not a complete transformers CLIP checkpoint: missing '
                       f'{len(missing)} keys {missing[:10]}')
    unexpected = sorted(set(state) - set(needed))
    if unexpected:
        raise KeyError(f'{source}: {len(unexpected)} keys of no standard CLIP module '
                       f'{unexpected[:10]}; the config describes {cfg["vision_cfg"]["layers"]} '
                       'image layers' + ('' if vision_only else
                                         f' and {cfg["text_cfg"]["layers"]} text layers'))
    out = {b: state[a] for a, b in renames}
    out.update({b: state[a].t().contiguous() for a, b in transposed})  # (W, D)
    out.update({b: torch.cat([state[k] for k in keys]) for keys, b in concats})  # (3W, W)
    return out


def read_hf_config(path: str | os.PathLike) -> dict:
    """A transformers ``config.json``, parsed; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'Hugging Face CLIP config not found: {path}')
    try:
        cfg = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f'{path}: not a JSON config ({err})') from None
    if not isinstance(cfg, dict) or not _is_hf_config(cfg):
        raise ValueError(f"{path}: not a transformers config (no 'model_type', 'vision_config' "
                         "or 'text_config')")
    return cfg


def _weights_in(directory: Path, allow_shards: bool) -> list[Path]:
    """The weights file(s) of a transformers directory (shards in index order)."""
    for name in WEIGHTS_NAMES:
        if (directory / name).is_file():
            return [directory / name]
    for name in SHARD_INDEX_NAMES:
        index = directory / name
        if index.is_file():
            if not allow_shards:
                raise ValueError(
                    f'{directory}: sharded weights ({name}); convert them once into one file: '
                    f'python tools/model_converters/hf_clip.py {directory} OUT.safetensors, then '
                    "load_clip('OUT.json', 'OUT.safetensors')")
            weight_map = json.loads(index.read_text()).get('weight_map', {})
            return [directory / shard for shard in dict.fromkeys(weight_map.values())]
    raise FileNotFoundError(f'{directory}: no weights file; expected one of '
                            f'{list(WEIGHTS_NAMES + SHARD_INDEX_NAMES)}')


def read_hf_clip(pretrained: str | os.PathLike, config: str | os.PathLike | None = None, *,
                 vision_only: bool = False, allow_shards: bool = False,
                 state: dict[str, torch.Tensor] | None = None) -> HFCLIPCheckpoint:
    """Read and convert a transformers CLIP checkpoint.

    Args:
        pretrained: a directory holding ``config.json`` and ``model.safetensors`` or
            ``pytorch_model.bin``, or one such weights file.
        config: the ``config.json`` to use; defaults to the one in ``pretrained``'s directory
            (head counts, activation and end-of-text id are not stored in the weights).
        vision_only: convert the image tower only (see :func:`convert_hf_clip_state`).
        allow_shards: read ``*.index.json`` shards (the converter CLI does; the loader needs
            one file to fingerprint).
        state: the tensors of ``pretrained`` (a file) when already read.
    """
    from .loading import read_state_dict  # .loading imports this module

    pretrained = Path(pretrained)
    directory = pretrained if pretrained.is_dir() else pretrained.parent
    if config is None:
        config = directory / CONFIG_NAME
        if not config.is_file():
            raise FileNotFoundError(
                f'{pretrained}: a transformers CLIP checkpoint needs its config.json (head '
                'counts, hidden_act and eos_token_id are not stored in the weights); none in '
                f"{directory}. Put it next to the weights or pass model='/path/to/config.json'")
    raw = read_hf_config(config)
    cfg = hf_to_open_clip_config(raw, vision_only=vision_only, source=str(config))
    drop = FGCLIP_LONG_TEXT_KEYS if is_fgclip(raw) else ()
    if drop:
        logger.info('%s: FG-CLIP; its short-text walk converts, the long-text branch (%s) is '
                    'left out', config, ', '.join(drop))
    files = _weights_in(pretrained, allow_shards) if pretrained.is_dir() else [pretrained]
    if state is None:
        state = {}
        for file in files:
            state.update(read_state_dict(file)[0])
    if not is_hf_clip_state(state):
        raise KeyError(f"{files[0]}: no transformers CLIP keys ('vision_model.embeddings."
                       "patch_embedding.weight'); is this a transformers CLIPModel checkpoint?")
    state = convert_hf_clip_state(state, cfg, vision_only=vision_only, drop=drop,
                                  source=str(files[0]))
    if not vision_only and cfg['text_cfg']['vocab_size'] != CLIP_BPE_VOCAB:
        logger.warning("%s: the text tower has %d tokens, not the %d of CLIP's BPE that "
                       'denseclip tokenizes with by default; pass its own tokenizer '
                       '(OpenCLIPTextEncoder(tokenizer=...))', config,
                       cfg['text_cfg']['vocab_size'], CLIP_BPE_VOCAB)
    return HFCLIPCheckpoint(name=f'hf:{config}', config=cfg, state=state,
                            checkpoint=str(files[0]), quick_gelu=cfg['quick_gelu'])


def _hf_config_file(model: str) -> bool:
    """Whether ``model`` names a transformers ``config.json`` (not an open_clip one)."""
    if not (model.endswith('.json') and os.path.isfile(model)):
        return False
    try:
        cfg = json.loads(Path(model).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(cfg, dict) and _is_hf_config(cfg)


def hf_clip_checkpoint(model: str | os.PathLike | None, pretrained: str,
                       state: dict[str, torch.Tensor] | None) -> HFCLIPCheckpoint | None:
    """:func:`~denseclip.clip.load_clip`'s router: the converted checkpoint when ``pretrained``
    is a transformers CLIP (a directory, or a file whose ``state`` has its keys), else None.

    ``model`` must be None (the ``config.json`` next to the weights) or a transformers
    ``config.json``: the architecture comes from it, never from an open_clip name.
    """
    is_dir = os.path.isdir(pretrained)
    if not is_dir and (state is None or not is_hf_clip_state(state)):
        return None
    config = None
    if model is not None:
        model = os.fspath(model)
        if not _hf_config_file(model):
            raise ValueError(f"pretrained='{pretrained}' is a Hugging Face (transformers) CLIP "
                             f'checkpoint whose config.json defines the architecture; got '
                             f"model='{model}'. Pass model=None, or model='/path/to/config.json' "
                             'of that checkpoint')
        config = model
    if is_dir and config is None and not os.path.isfile(os.path.join(pretrained, CONFIG_NAME)):
        raise FileNotFoundError(f"pretrained='{pretrained}' is a directory without config.json; "
                                'expected a transformers CLIP directory (config.json + '
                                'model.safetensors or pytorch_model.bin) or a weights file '
                                '(for an open_clip hub snapshot: its open_clip_model.safetensors '
                                'with model=<its name or open_clip_config.json>)')
    return read_hf_clip(pretrained, config, state=None if is_dir else state)


def load_hf_clip_visual(pretrained: str | os.PathLike, config: str | os.PathLike | None = None,
                        ) -> tuple[torch.nn.Module, dict]:
    """The image tower of a transformers CLIP-family checkpoint as open_clip's
    ``VisionTransformer``, loaded strictly (Chinese-CLIP, ``CLIPVisionModelWithProjection``,
    or any full CLIP).

    Returns:
        The tower in eval mode (``tower(images)`` = HF ``get_image_features``) and the open_clip
        config it was built from (``embed_dim``, ``vision_cfg``, ``quick_gelu``).
    """
    from open_clip.model import _build_vision_tower

    from .loading import load_state_dict_strict

    hf = read_hf_clip(pretrained, config, vision_only=True)
    cfg = hf.config
    visual = _build_vision_tower(cfg['embed_dim'], cfg['vision_cfg'], cfg['quick_gelu'])
    state = {k[len('visual.'):]: v.float() for k, v in hf.state.items()}
    load_state_dict_strict(visual, state, source=hf.checkpoint)
    logger.info('image tower of %s: activation %s', hf.name,
                'QuickGELU' if hf.quick_gelu else 'GELU')
    return visual.eval(), cfg
