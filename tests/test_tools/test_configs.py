"""Every config in configs/ loads and inherits only from _base_ files; every evaluation config of
the training-free segmentor builds and segments with a tiny CLIP; a sample of settings equals
the reference notes (§2.2-§2.3, §3-§9)."""
import ast
import copy
import json
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmseg.structures import SegDataSample
from timm.models.vision_transformer import VisionTransformer

from conftest import TINY_VIT
from denseclip.models.segmentors import OpenVocabSegmentor
from denseclip.models.text.templates import get_templates
from denseclip.registry import DATASETS, MODELS
from denseclip.utils import check_model_config, check_vocabulary

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
LEAVES = sorted(p.relative_to(CONFIGS).as_posix() for p in CONFIGS.glob('*/*.py')
                if p.parent.name != '_base_')
# Evaluation configs of OpenVocabSegmentor (training configs of trained methods are built by
# their own tests: they need teacher weights a tiny CLIP cannot stand in for).
# (detector configs are mmdet models: not in mmseg's registry, built by their own tests)
SEGMENTOR_LEAVES = [leaf for leaf in LEAVES if isinstance(
    cls := MODELS.get(Config.fromfile(str(CONFIGS / leaf)).model.type), type)
    and issubclass(cls, OpenVocabSegmentor)]
METHODS = ('vanilla', 'maskclip', 'sclip', 'clearclip', 'naclip', 'cliptrase', 'proxyclip',
           'clip_dinoiser', 'scclip', 'resclip', 'corrclip', 'trident')
BENCHMARKS = ('voc21', 'voc20', 'context60', 'context59', 'coco-object', 'coco-stuff171',
              'cityscapes', 'ade20k')


def test_the_grid_is_complete():
    expected = {f'{m}/{m}_vit-b16_{d}.py' for m in METHODS for d in BENCHMARKS}
    expected |= {f'{m}/{m}_toy-vit-p16_toy.py' for m in METHODS}
    assert expected <= set(SEGMENTOR_LEAVES)


@pytest.mark.parametrize('leaf', LEAVES)
def test_leaf_inherits_only_base_files(leaf):
    source = (CONFIGS / leaf).read_text()
    tree = ast.parse(source)
    bases = next(ast.literal_eval(node.value) for node in tree.body
                 if isinstance(node, ast.Assign) and node.targets[0].id == '_base_')
    # our bases, or mmdet's own (the detectors inherit its stock models and schedules)
    assert bases and all(b.startswith(('../_base_/', 'mmdet::_base_/')) for b in bases)
    for line in source.splitlines():
        if '_delete_' in line:
            assert '#' in line, f'{leaf}: _delete_ without a comment'


@pytest.fixture(scope='module')
def tiny_config(tmp_path_factory):
    """The path of a tiny ViT CLIP config with at least ``layers`` blocks (2 unless a leaf reads
    an earlier block, as CLIP-DINOiser's guidance_block=-3 does)."""
    folder = tmp_path_factory.mktemp('tiny')

    def path(layers: int = 2) -> str:
        cfg = copy.deepcopy(TINY_VIT)
        cfg['vision_cfg']['layers'] = max(cfg['vision_cfg']['layers'], layers)
        file = folder / f'tiny_vit_{layers}.json'
        file.write_text(json.dumps(cfg))
        return str(file)

    return path


def tiny_model_config(model: dict, tiny_config) -> dict:
    """A leaf's model config with tiny random stand-ins for every weight it would load.

    The leaves stay as released; only what would be downloaded or is tied to the CLIP's size
    is swapped: the CLIP (a 2-layer tiny one, or as deep as the CLIP-DINOiser guidance block,
    SC-CLIP's, RCS's or CorrCLIP's blocks need), a proxy from timm's hub (DINO ViT-B/8: a
    random 1-block timm ViT with 8-pixel patches), SAM's masks (superpixels), SAM's encoder
    (a tiny random one) and CLIP-DINOiser's heads (random, as wide as the tiny CLIP).
    """
    model = copy.deepcopy(model)
    refiner = model.get('feature_refiner')
    layers = -refiner['guidance_block'] if refiner else 2
    dense = model['backbone']['dense']
    if dense['type'] == 'SCCLIPAttention':  # its indices read tokens after blocks <= L-2
        layers = max(dense['pre_adjust_idx'], dense['post_adjust_idx'],
                     dense['multi_end_idx'] - 1) + 2
    if dense['type'] == 'ResCLIPAttention':  # RCS reads blocks up to rcs_blocks[1] - 1 <= L-2
        layers = dense['rcs_blocks'][1] + 1
    if dense['type'] == 'CorrCLIPAttention':  # its spatial branch averages blocks before L-2
        layers = dense['num_spatial'] + 2
    model['backbone'].update(model=tiny_config(layers), pretrained=None)
    if model.get('mask_generator', {}).get('type') == 'SAMMaskGenerator':  # no SAM offline
        model['mask_generator'] = dict(type='SuperpixelMaskGenerator')
    if 'mask_generator' in model:  # nothing written to the user's mask cache
        model['mask_generator']['cache_dir'] = False
    if model.get('sam', {}).get('type') == 'SAMProxy':  # no SAM offline: a tiny random one
        model['sam'] = dict(type='SmallSAMEncoder', img_size=64, embed_dim=32, depth=2,
                            num_heads=2, window_size=2)
    if 'proxy' in dense and dense['proxy'].get('pretrained') == 'timm':
        torch.manual_seed(0)
        vit = VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2,
                                num_classes=0).eval()
        dense['proxy'].update(model=vit, pretrained=None)
    if refiner:
        refiner.update(checkpoint=None, in_channels=TINY_VIT['vision_cfg']['width'])
    return model


@pytest.mark.parametrize('leaf', SEGMENTOR_LEAVES)
def test_config_builds_and_segments(leaf, tiny_config):
    cfg = Config.fromfile(str(CONFIGS / leaf))
    where = str(leaf)
    check_model_config(cfg.model, where)
    check_vocabulary(cfg, where)
    assert get_templates(cfg.model.templates)
    assert cfg.test_dataloader.dataset.pipeline == cfg.test_pipeline
    assert cfg.test_dataloader.batch_size == 1
    assert cfg.test_evaluator.iou_metrics == ['mIoU']
    assert cfg.test_evaluator.type in ('IoUMetric', 'OpenVocabIoUMetric')
    # Tiny-model override: a tiny CLIP with random weights, one template (the 80 templates
    # x 171 names of COCO-Stuff take ~20 s through even a tiny text tower).
    # to_dict: plain dicts, which can hold the built stand-in modules
    model_cfg = tiny_model_config(cfg.model.to_dict(), tiny_config)
    model_cfg['templates'] = '{}'
    torch.manual_seed(0)
    model = MODELS.build(model_cfg).eval()
    classes = DATASETS.get(cfg.test_dataloader.dataset.type).METAINFO['classes']
    assert model.num_classes == len(classes)
    sample = SegDataSample(metainfo=dict(ori_shape=(40, 70), img_shape=(48, 80)))
    inputs = torch.randn(1, 3, 48, 80)
    pred = model.predict(inputs, [sample])[0].pred_sem_seg.data
    assert pred.shape == (1, 40, 70)
    assert 0 <= pred.min() and pred.max() < len(classes)


def _get(cfg, path):
    for key in path.split('.'):
        cfg = cfg[int(key)] if isinstance(cfg, list) else cfg[key]
    return cfg


def _switched_on(method: str, path: str) -> set[str]:
    return {d for d in BENCHMARKS
            if _get(Config.fromfile(str(CONFIGS / f'{method}/{method}_vit-b16_{d}.py')), path)}


def test_per_dataset_switches():
    """CLIP-DINOiser's FOUND override runs on VOC21 and Object only (main_eval.py keys 'voc',
    'coco_object'; notes §9(a)), CLIPtrase's [CLS] product on VOC20 only (notes §8(b))."""
    assert _switched_on('clip_dinoiser', 'model.feature_refiner.apply_found') == {
        'voc21', 'coco-object'}
    assert _switched_on('cliptrase', 'model.patch_refiner.cls_product') == {'voc20'}


PAMR = dict(type='PAMRRefiner', num_iter=10, dilations=(8, 16))
# config -> expected settings, from the reference notes' tables (S = short side of Resize).
EXPECTED = {
    'sclip/sclip_vit-b16_voc21.py': dict(
        S=336, logit_scale=65, prob_thd=0.1, area_thd=0.1, slide_crop=224, slide_stride=112,
        refiner=None, dense='SCLIPAttention', pos_interp='scale_factor', vocab='sclip/cls_voc21',
        name_sep=', ', templates='openai_imagenet'),
    'sclip/sclip_vit-b16_context60.py': dict(S=336, logit_scale=50, prob_thd=0.1, area_thd=None),
    'sclip/sclip_vit-b16_coco-object.py': dict(S=336, logit_scale=50, prob_thd=0.1),
    'sclip/sclip_vit-b16_voc20.py': dict(S=336, logit_scale=40, prob_thd=0.0, area_thd=None),
    'sclip/sclip_vit-b16_coco-stuff171.py': dict(S=448, logit_scale=40, prob_thd=0.0),
    'sclip/sclip_vit-b16_cityscapes.py': dict(S=560, slide_crop=224, slide_stride=112),
    'sclip/sclip_vit-b16_ade20k.py': dict(S=336, vocab='sclip/cls_ade20k'),
    'vanilla/vanilla_vit-b16_voc21.py': dict(
        S=336, logit_scale=65, prob_thd=0.1, area_thd=0.1, dense='VanillaAttention',
        pos_interp='scale_factor'),
    'naclip/naclip_vit-b16_voc21.py': dict(
        S=336, slide_crop=0, logit_scale=40, prob_thd=0.1, refiner=PAMR,
        dense='NACLIPAttention', pos_interp='scale_factor', vocab='sclip/cls_voc21',
        renormalize=True),
    'naclip/naclip_vit-b16_voc20.py': dict(S=336, slide_crop=0, prob_thd=0.0, refiner=PAMR),
    'naclip/naclip_vit-b16_context60.py': dict(S=336, slide_crop=224, slide_stride=112,
                                               prob_thd=0.1, refiner=PAMR),
    'naclip/naclip_vit-b16_coco-stuff171.py': dict(S=336, refiner=PAMR),
    'naclip/naclip_vit-b16_cityscapes.py': dict(S=560, slide_crop=224, refiner=PAMR),
    'clearclip/clearclip_vit-b16_voc21.py': dict(
        S=448, slide_crop=448, slide_stride=224, logit_scale=50, prob_thd=0.5, refiner=None,
        dense='ClearCLIPAttention', name_sep=',', pad_to_patch=True,
        vocab='clearclip/cls_voc21'),
    'clearclip/clearclip_vit-b16_context60.py': dict(S=448, prob_thd=0.15,
                                                     vocab='sclip/cls_context60'),
    'clearclip/clearclip_vit-b16_coco-object.py': dict(S=448, prob_thd=0.4,
                                                       vocab='clearclip/cls_coco_object'),
    'clearclip/clearclip_vit-b16_cityscapes.py': dict(S=448, slide_crop=224, slide_stride=224),
    'clearclip/clearclip_vit-b16_ade20k.py': dict(S=448, slide_crop=448, prob_thd=0.0),
    'maskclip/maskclip_vit-b16_voc20.py': dict(
        scale=(2048, 512), slide_crop=0, prob_thd=0.0, dense='MaskCLIPAttention',
        pos_interp='size', templates='maskclip', vocab='maskclip/cls_voc20'),
    'maskclip/maskclip_vit-b16_context59.py': dict(scale=(520, 520), slide_crop=0),
    'maskclip/maskclip_vit-b16_cityscapes.py': dict(scale=(1024, 512), slide_crop=0),
    # CLIPtrase (§8, §14.6, §16): 100·cos, one pass at 224, DBSCAN (0.7, 3) and a vote, the
    # [CLS] product for VOC20 only, background word lists for VOC21 / Object / PC60.
    'cliptrase/cliptrase_vit-b16_voc21.py': dict(
        S=224, slide_crop=0, logit_scale=100, prob_thd=0.0, refiner=None,
        dense='CLIPtraseAttention', pos_interp='scale_factor', templates='openai_imagenet',
        region='vote', preset=224, cls_product=False, vocab='cliptrase/cls_voc21'),
    'cliptrase/cliptrase_vit-b16_voc20.py': dict(S=224, slide_crop=0, cls_product=True,
                                                 vocab='cliptrase/cls_voc20'),
    'cliptrase/cliptrase_vit-b16_context60.py': dict(cls_product=False,
                                                     vocab='cliptrase/cls_context60'),
    'cliptrase/cliptrase_vit-b16_coco-object.py': dict(S=224, logit_scale=100,
                                                       vocab='cliptrase/cls_coco_object'),
    'cliptrase/cliptrase_vit-b16_ade20k.py': dict(S=224, slide_crop=0, preset=224,
                                                  cls_product=False),
    # ProxyCLIP (§7(b), §2.2-§2.3): DINO ViT-B/8, β 1.2, γ 3, 336/112 padded to 56, logit 40.
    'proxyclip/proxyclip_vit-b16_voc21.py': dict(
        S=336, slide_crop=336, slide_stride=112, pad_to_patch=True, pad_multiple=56,
        logit_scale=40, prob_thd=0.2, refiner=None, dense='ProxyCLIPAttention',
        proxy='vit_base_patch8_224.dino', beta=1.2, gamma=3.0, pos_interp='scale_factor',
        name_sep='; ', templates='openai_imagenet', vocab='proxyclip/cls_voc21'),
    'proxyclip/proxyclip_vit-b16_context60.py': dict(S=336, prob_thd=0.15,
                                                     vocab='sclip/cls_context60'),
    'proxyclip/proxyclip_vit-b16_coco-object.py': dict(S=336, prob_thd=0.25,
                                                       vocab='proxyclip/cls_coco_object'),
    'proxyclip/proxyclip_vit-b16_voc20.py': dict(S=336, prob_thd=0.0,
                                                 vocab='clearclip/cls_voc20'),
    'proxyclip/proxyclip_vit-b16_cityscapes.py': dict(S=448, slide_crop=224, slide_stride=112),
    'proxyclip/proxyclip_vit-b16_ade20k.py': dict(S=448, slide_crop=336, slide_stride=112),
    # CLIP-DINOiser (§9): LAION-2B MaskCLIP, S 448, 448/224 over softmax(100·cos), γ 0.2,
    # FOUND (δ 0.99) on VOC21 and Object only.
    'clip_dinoiser/clip_dinoiser_vit-b16_voc21.py': dict(
        pretrained='laion2b_s34b_b88k', S=448, slide_crop=448, slide_stride=224,
        logit_scale=100, window_softmax=True, prob_thd=0.0, dense='MaskCLIPAttention',
        pos_interp='size', templates='openai_imagenet', corr_gamma=0.2, found=True,
        found_delta=0.99, guidance_block=-3, heads='checkpoints/clip_dinoiser/last.pt',
        vocab='clip_dinoiser/cls_voc21'),
    'clip_dinoiser/clip_dinoiser_vit-b16_coco-object.py': dict(
        pretrained='laion2b_s34b_b88k', S=448, found=True, vocab='clip_dinoiser/cls_coco_object'),
    'clip_dinoiser/clip_dinoiser_vit-b16_voc20.py': dict(pretrained='laion2b_s34b_b88k',
                                                         found=False),
    'clip_dinoiser/clip_dinoiser_vit-b16_context60.py': dict(pretrained='laion2b_s34b_b88k',
                                                             found=False, S=448),
    'clip_dinoiser/clip_dinoiser_vit-b16_cityscapes.py': dict(
        pretrained='laion2b_s34b_b88k', S=448, slide_crop=448, slide_stride=224, found=False),
    # SC-CLIP (§12): SCLIP's harness and name files, its own thresholds per dataset
    'scclip/scclip_vit-b16_voc21.py': dict(
        S=336, logit_scale=50, prob_thd=0.15, area_thd=0.1, slide_crop=224, slide_stride=112,
        refiner=None, dense='SCCLIPAttention', pos_interp='scale_factor',
        vocab='sclip/cls_voc21', name_sep=', ', templates='openai_imagenet'),
    'scclip/scclip_vit-b16_coco-object.py': dict(S=336, logit_scale=55, prob_thd=0.35),
    'scclip/scclip_vit-b16_context60.py': dict(S=336, logit_scale=40, prob_thd=0.15),
    'scclip/scclip_vit-b16_cityscapes.py': dict(S=560, slide_crop=224, slide_stride=112),
    'scclip/scclip_vit-b16_voc20.py': dict(S=336, logit_scale=40, prob_thd=0.0, area_thd=None),
    # ResCLIP (§12): NACLIP's last block and name files, RCS/SFR weights and AdaThr per dataset
    'resclip/resclip_vit-b16_voc21.py': dict(
        S=336, slide_crop=0, logit_scale=40, prob_thd=0.1, refiner=None,
        dense='ResCLIPAttention', pos_interp='scale_factor', vocab='sclip/cls_voc21',
        rcs_weights=(2.0, 0.3), sfr_weights=(2.2, 0.7), temp_thd=0.5, renormalize=True),
    'resclip/resclip_vit-b16_context60.py': dict(
        S=336, slide_crop=224, prob_thd=0.1, rcs_weights=(2.0, 0.3), sfr_weights=(1.8, 0.7),
        temp_thd=0.3),
    'resclip/resclip_vit-b16_coco-object.py': dict(
        S=336, prob_thd=0.1, rcs_weights=(2.0, 0.4), sfr_weights=(1.8, 0.7), temp_thd=0.11),
    'resclip/resclip_vit-b16_voc20.py': dict(
        S=336, slide_crop=0, prob_thd=0.0, rcs_weights=(2.0, 0.6), sfr_weights=(2.1, 0.6),
        temp_thd=0.1),
    'resclip/resclip_vit-b16_context59.py': dict(
        S=336, rcs_weights=(2.0, 0.4), sfr_weights=(1.8, 0.7), temp_thd=0.25),
    'resclip/resclip_vit-b16_coco-stuff171.py': dict(
        S=336, rcs_weights=(2.0, 0.4), sfr_weights=(1.8, 0.7), temp_thd=0.11),
    'resclip/resclip_vit-b16_cityscapes.py': dict(
        S=560, slide_crop=224, slide_stride=112, rcs_weights=(2.0, 0.2), sfr_weights=(2.1, 0.6),
        temp_thd=0.1),
    'resclip/resclip_vit-b16_ade20k.py': dict(
        S=336, rcs_weights=(2.0, 0.3), sfr_weights=(2.1, 0.7), temp_thd=0.25),
    # Trident (§12, trident.py and configs/ of YuHengsss/Trident@a93b346): ProxyCLIP's window
    # step with DINO ViT-B/16, SAM ViT-B's aggregation, 336/224 windows
    'trident/trident_vit-b16_voc21.py': dict(
        S=448, prob_thd=0.2, slide_crop=336, slide_stride=224, beta=1.2, gamma=3.0,
        proxy='vit_base_patch16_224.dino', dense='TridentAttention', logit_scale=40,
        name_sep='; ', cos_fac=1.2, refine_neg_cos=True, sam_splits=1),
    'trident/trident_vit-b16_context60.py': dict(S=576, prob_thd=0.15),
    'trident/trident_vit-b16_coco-object.py': dict(S=448, prob_thd=0.25),
    'trident/trident_vit-b16_voc20.py': dict(S=336, slide_stride=112),
    'trident/trident_vit-b16_context59.py': dict(S=576),
    'trident/trident_vit-b16_coco-stuff171.py': dict(S=448),
    'trident/trident_vit-b16_cityscapes.py': dict(S=688, sam_splits=2),
    'trident/trident_vit-b16_ade20k.py': dict(S=576),
}
PATHS = {
    'slide_crop': 'model.slide_crop', 'slide_stride': 'model.slide_stride',
    'logit_scale': 'model.logit_scale', 'prob_thd': 'model.prob_thd',
    'area_thd': 'model.area_thd', 'refiner': 'model.refiner', 'name_sep': 'model.name_sep',
    'renormalize': 'model.renormalize',
    'templates': 'model.templates', 'pad_to_patch': 'model.pad_to_patch',
    'dense': 'model.backbone.dense.type', 'pos_interp': 'model.backbone.pos_interp',
    'scale': 'test_pipeline.1.scale', 'pretrained': 'model.backbone.pretrained',
    'pad_multiple': 'model.pad_multiple', 'window_softmax': 'model.window_softmax',
    'region': 'model.patch_refiner.mode', 'preset': 'model.patch_refiner.preset',
    'cls_product': 'model.patch_refiner.cls_product',
    'proxy': 'model.backbone.dense.proxy.model', 'beta': 'model.backbone.dense.beta',
    'gamma': 'model.backbone.dense.gamma',
    'corr_gamma': 'model.feature_refiner.gamma', 'found': 'model.feature_refiner.apply_found',
    'found_delta': 'model.feature_refiner.found_delta',
    'guidance_block': 'model.feature_refiner.guidance_block',
    'heads': 'model.feature_refiner.checkpoint',
    'rcs_weights': 'model.backbone.dense.rcs_weights',
    'sfr_weights': 'model.backbone.dense.sfr_weights',
    'temp_thd': 'model.patch_refiner.temp_thd',
    'cos_fac': 'model.cos_fac', 'refine_neg_cos': 'model.refine_neg_cos',
    'sam_splits': 'model.sam_splits',
}


@pytest.mark.parametrize('leaf', list(EXPECTED))
def test_settings_equal_the_reference(leaf):
    cfg = Config.fromfile(str(CONFIGS / leaf))
    assert cfg.model.backbone.model == 'ViT-B-16'
    assert cfg.model.backbone.pretrained == EXPECTED[leaf].get('pretrained', 'openai'), leaf
    resize = cfg.test_pipeline[1]
    assert resize.type == 'Resize' and resize.keep_ratio
    for name, value in EXPECTED[leaf].items():
        if name == 'S':
            assert tuple(resize.scale) == (2048, value), leaf
        elif name == 'vocab':
            assert cfg.model.vocabulary.endswith(f'/vocabularies/{value}.txt'), leaf
        elif name == 'scale':
            assert tuple(resize.scale) == value, leaf
        else:
            got = _get(cfg, PATHS[name])
            got = dict(got, dilations=tuple(got['dilations'])) if isinstance(got, dict) else got
            assert got == value, f'{leaf}: {name} = {got!r}, expected {value!r}'


def _stated(call: ast.Call) -> dict:
    """The keyword tree of a ``dict(...)`` call in a config's source (leaves: True)."""
    out = {}
    for kw in call.keywords:
        nested = isinstance(kw.value, ast.Call) and getattr(kw.value.func, 'id', '') == 'dict'
        out[kw.arg] = _stated(kw.value) if nested else True
    return out


@pytest.mark.parametrize('leaf', [f'{m}/{m}_vit-b16_{b}.py' for m in METHODS for b in BENCHMARKS])
def test_benchmark_leaves_state_only_what_their_dataset_changes(leaf, tmp_path):
    """One source of truth (DESIGN.md §4): a model setting a benchmark leaf states differs
    from the value of its harness and dataset bases alone; editing a harness value changes
    every benchmark that does not override it."""
    source = (CONFIGS / leaf).read_text()
    tree = ast.parse(source)
    bases = next(ast.literal_eval(node.value) for node in tree.body
                 if isinstance(node, ast.Assign) and node.targets[0].id == '_base_')
    model = next(node.value for node in tree.body
                 if isinstance(node, ast.Assign) and node.targets[0].id == 'model')
    only_bases = tmp_path / 'bases.py'
    only_bases.write_text(f'_base_ = {[str((CONFIGS / leaf).parent / b) for b in bases]!r}\n')
    base = Config.fromfile(str(only_bases)).model.to_dict()
    full = Config.fromfile(str(CONFIGS / leaf)).model.to_dict()

    def check(stated: dict, ours: dict, theirs: dict, key: str) -> None:
        for name, sub in stated.items():
            if isinstance(sub, dict) and isinstance(theirs.get(name), dict):
                check(sub, ours[name], theirs[name], f'{key}.{name}')
            else:
                assert ours[name] != theirs.get(name, object()), (
                    f'{leaf}: {key}.{name} = {ours[name]!r} restates its bases')

    check(_stated(model), full, base, 'model')
