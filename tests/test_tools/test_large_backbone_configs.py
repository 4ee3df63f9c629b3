"""The larger-backbone leaves of the training-free methods (issue 18): ProxyCLIP on ViT-L/14 and
ViT-H/14, the pairs its configs/base_config.py@e7b767f lists (('openai', 'ViT-L-14'),
('laion2b_s32b_b79k', 'ViT-H-14')). NACLIP and SCLIP have none: their releases configure ViT-B/16
only and no L/H number of theirs was recovered (see /work/notes/large-configs.md).

No weights are downloaded and no real ViT-L/H runs: the real architectures are built on the meta
device (shapes only) through the real loading path with the download stubbed, and the leaves
segment with shrunk towers of the same family (patch 14, the tag's activation).
"""
import copy
import json
import re
from pathlib import Path

import open_clip
import pytest
import torch
from mmengine.config import Config
from mmseg.structures import SegDataSample
from open_clip.model import CLIP
from open_clip.transformer import QuickGELU
from timm.models.vision_transformer import VisionTransformer

import denseclip  # noqa: F401  (registration)
from denseclip.clip import loading
from denseclip.models.backbones.clip_vit import CLIPViT
from denseclip.registry import DATASETS, MODELS

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
BENCHMARKS = ('voc21', 'voc20', 'context60', 'context59', 'coco-object', 'coco-stuff171',
              'cityscapes', 'ade20k')
# backbone key of the file name -> the CLIP the paper / release uses, written out from
# ProxyCLIP's base_config.py and open_clip's model configs (not read from the leaves):
# (open_clip model, tag, QuickGELU, width, layers, heads, patch, pretraining image size).
PAPER = {
    'vit-l14': ('ViT-L-14', 'openai', True, 1024, 24, 16, 14, 224),  # OpenAI: QuickGELU
    'vit-h14': ('ViT-H-14', 'laion2b_s32b_b79k', False, 1280, 32, 16, 14, 224),  # LAION: GELU
}
# method -> its larger backbones with published rows (only ProxyCLIP's paper reports L and H).
LARGE = {'proxyclip': ('vit-l14', 'vit-h14')}
# ProxyCLIP's released settings, the same for every CLIP (proxyclip_segmentor.py defaults,
# cfg_city_scapes.py): windows (crop, stride), padding multiple, beta, gamma, DINO ViT-B/8.
WINDOWS = {'cityscapes': (224, 112)}  # every other benchmark: (336, 112)
PAD_MULTIPLE, BETA, GAMMA, PROXY, PROXY_PATCH = 56, 1.2, 3.0, 'vit_base_patch8_224.dino', 8

LARGE_LEAVES = sorted(p.relative_to(CONFIGS).as_posix()
                      for method in ('naclip', 'proxyclip', 'sclip')
                      for p in (CONFIGS / method).glob('*.py')
                      if re.search(r'_vit-(l|h|g|bigg)\d', p.name))


def _parse(leaf: str) -> tuple[str, str, str]:
    """'proxyclip/proxyclip_vit-h14_voc21.py' -> ('proxyclip', 'vit-h14', 'voc21')."""
    method, name = leaf.split('/')
    backbone, benchmark = re.fullmatch(rf'{method}_(vit-[a-z]+\d+)_(.+)\.py', name).groups()
    return method, backbone, benchmark


def test_the_grid_is_exactly_the_reported_one():
    expected = {f'{m}/{m}_{b}_{d}.py' for m, backbones in LARGE.items() for b in backbones
                for d in BENCHMARKS}
    assert set(LARGE_LEAVES) == expected


@pytest.mark.parametrize('leaf', LARGE_LEAVES)
def test_leaf_differs_from_its_vit_b16_leaf_by_the_clip_alone(leaf):
    method, backbone, benchmark = _parse(leaf)
    name, tag = PAPER[backbone][:2]
    cfg = Config.fromfile(str(CONFIGS / leaf)).to_dict()
    base = Config.fromfile(str(CONFIGS / f'{method}/{method}_vit-b16_{benchmark}.py')).to_dict()
    assert (cfg['model']['backbone']['model'], cfg['model']['backbone']['pretrained']) == (
        name, tag)
    assert open_clip.get_pretrained_cfg(name, tag), f'{leaf}: open_clip has no {name}/{tag}'
    swapped = copy.deepcopy(cfg)
    swapped['model']['backbone'].update(model=base['model']['backbone']['model'],
                                        pretrained=base['model']['backbone']['pretrained'])
    assert swapped == base


@pytest.mark.parametrize('leaf', LARGE_LEAVES)
def test_released_settings_fit_the_patch_14_tower(leaf):
    _, backbone, benchmark = _parse(leaf)
    patch = PAPER[backbone][6]
    model = Config.fromfile(str(CONFIGS / leaf)).model
    crop, stride = WINDOWS.get(benchmark, (336, 112))
    assert (model.slide_crop, model.slide_stride) == (crop, stride)
    assert model.pad_to_patch and model.pad_multiple == PAD_MULTIPLE
    # 56 = lcm(14, 8): every padded window is whole CLIP patches and whole DINO patches
    assert PAD_MULTIPLE % patch == 0 and PAD_MULTIPLE % PROXY_PATCH == 0
    assert crop % PAD_MULTIPLE == 0
    dense = model.backbone.dense
    assert (dense.type, dense.beta, dense.gamma) == ('ProxyCLIPAttention', BETA, GAMMA)
    assert dense.proxy.model == PROXY and model.backbone.pos_interp == 'scale_factor'


def _stub_download(monkeypatch, name: str, quick_gelu: bool) -> None:
    """The loader's tag path without the network: the tag resolves to a file name and that
    file "holds" the state dict (meta tensors) of the open_clip architecture."""
    with torch.device('meta'):
        state = CLIP(**dict(open_clip.get_model_config(name), quick_gelu=quick_gelu)).state_dict()
    monkeypatch.setattr(loading, '_resolve_tag', lambda n, t: f'/weights/{n}-{t}.bin')
    monkeypatch.setattr(loading, 'read_state_dict', lambda path: (state, False))


@pytest.mark.parametrize('backbone', sorted(PAPER))
def test_the_tag_loads_the_real_tower_with_its_activation(backbone, monkeypatch):
    """load_clip's activation rule for the leaf's (model, tag): the OpenAI tag means QuickGELU,
    LAION-2B's ViT-H-14 plain GELU; and the real tower's geometry (meta device)."""
    name, tag, quick_gelu, width, layers, heads, patch, size = PAPER[backbone]
    _stub_download(monkeypatch, name, quick_gelu)
    with torch.device('meta'):
        clip, source = loading.load_clip(name, tag)
    assert source.quick_gelu is quick_gelu and source.checkpoint == f'/weights/{name}-{tag}.bin'
    visual = clip.visual
    blocks = visual.transformer.resblocks
    assert isinstance(blocks[0].mlp.gelu, QuickGELU) is quick_gelu
    assert (visual.conv1.out_channels, len(blocks), blocks[0].attn.num_heads) == (
        width, layers, heads)
    assert visual.conv1.kernel_size == (patch, patch)
    assert visual.positional_embedding.shape[0] == (size // patch) ** 2 + 1


@pytest.mark.parametrize('leaf', [f'proxyclip/proxyclip_{b}_{d}.py' for b in LARGE['proxyclip']
                                  for d in ('voc21', 'cityscapes')])
def test_real_geometry_on_the_meta_device(leaf, monkeypatch):
    """The leaf's backbone as configured (real CLIP, real DINO ViT-B/8 architecture, random
    weights on the meta device): a crop of the leaf's window size gives features at DINO's
    grid, crop/8 (42 x 42 for 336, notes §7(a)), while CLIP's grid is crop/14."""
    _, backbone, _ = _parse(leaf)
    name, _, quick_gelu = PAPER[backbone][:3]
    _stub_download(monkeypatch, name, quick_gelu)
    model = Config.fromfile(str(CONFIGS / leaf)).model
    cfg = model.backbone.to_dict()
    cfg.pop('type')
    cfg['dense']['proxy']['pretrained'] = None  # the architecture, no timm hub file
    crop = model.slide_crop
    with torch.device('meta'):
        tower = CLIPViT(**cfg)
        out = tower.forward_dense(torch.empty(1, 3, crop, crop))
    embed = open_clip.get_model_config(name)['embed_dim']
    assert out.grid == (crop // 14, crop // 14)
    assert tuple(out.feats.shape) == (1, embed, crop // 8, crop // 8)


def _shrunk(name: str, quick_gelu: bool, folder: Path) -> str:
    """open_clip's config of ``name`` shrunk to 2 blocks of width 64 (patch size, image size
    and the activation kept): a model-config JSON the loader reads."""
    cfg = copy.deepcopy(open_clip.get_model_config(name))
    cfg['vision_cfg'].update(width=64, layers=2, head_width=32)
    cfg['text_cfg'].update(width=32, heads=2, layers=1)
    cfg.update(embed_dim=32, quick_gelu=quick_gelu)
    path = folder / f'{name}-shrunk.json'
    path.write_text(json.dumps(cfg))
    return str(path)


@pytest.mark.parametrize('leaf', [f'proxyclip/proxyclip_{b}_{d}.py' for b in LARGE['proxyclip']
                                  for d in ('voc21', 'cityscapes')])
def test_leaf_segments_with_a_shrunk_tower(leaf, tmp_path):
    """The whole leaf (vocabulary, windows, padding, thresholds) with a 2-block tower of the
    same family and a 1-block DINO with 8-pixel patches, on an image larger than the window
    whose sides are not multiples of it (several windows, each padded to 56)."""
    _, backbone, _ = _parse(leaf)
    name, _, quick_gelu, *_, patch, _ = PAPER[backbone]
    cfg = Config.fromfile(str(CONFIGS / leaf))
    model_cfg = cfg.model.to_dict()
    model_cfg['backbone'].update(model=_shrunk(name, quick_gelu, tmp_path), pretrained=None)
    torch.manual_seed(0)
    dino = VisionTransformer(img_size=32, patch_size=PROXY_PATCH, embed_dim=32, depth=1,
                             num_heads=2, num_classes=0).eval()
    model_cfg['backbone']['dense']['proxy'].update(model=dino, pretrained=None)
    model_cfg['templates'] = '{}'  # one template: the 80 x names through the text tower is slow
    model = MODELS.build(model_cfg).eval()
    assert model.backbone.patch_size == patch
    assert model.backbone.source.quick_gelu is quick_gelu
    classes = DATASETS.get(cfg.test_dataloader.dataset.type).METAINFO['classes']
    assert model.num_classes == len(classes)
    sample = SegDataSample(metainfo=dict(ori_shape=(300, 400), img_shape=(350, 460)))
    with torch.no_grad():
        out = model.predict(torch.randn(1, 3, 350, 460), [sample])[0]
    pred = out.pred_sem_seg.data
    assert pred.shape == (1, 300, 400)
    assert 0 <= pred.min() and pred.max() < len(classes)
    assert torch.isfinite(out.seg_logits.data).all()
