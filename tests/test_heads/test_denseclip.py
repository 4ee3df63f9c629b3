"""DenseCLIP: each part against an independent computation, released checkpoints through the
converter against a plain re-implementation of the released code (denseclip_reference.py)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from open_clip.modified_resnet import AttentionPool2d

from denseclip.engine import load_checkpoint_strict
from denseclip.models.backbones import attention_pool
from denseclip.models.heads import ContextDecoder, DenseCLIPHead
from denseclip.registry import MODELS
from denseclip_reference import (released_forward, released_identity_loss, released_state_dict,
                                 released_tokenize)

ROOT = Path(__file__).resolve().parents[2]
NAMES = ['wall', 'car', 'traffic light']
# open_clip configs of the reference's tiny sizes (denseclip_reference.RESNET/VIT/COMMON)
TEXT = dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=2)
CLIPS = {
    'resnet': dict(embed_dim=32, quick_gelu=True, text_cfg=TEXT,
                   vision_cfg=dict(image_size=64, layers=(1, 1, 1, 1), width=8, head_width=8)),
    'vit': dict(embed_dim=32, quick_gelu=True, text_cfg=TEXT,
                vision_cfg=dict(image_size=64, patch_size=16, width=32, layers=4,
                                head_width=16)),
}


def converter():
    spec = importlib.util.spec_from_file_location(
        'denseclip_converter', ROOT / 'tools/model_converters/denseclip.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def model_cfg(arch: str, clip_json: Path, names=NAMES) -> dict:
    """Our config of the reference's tiny DenseCLIP."""
    K = len(names)
    if arch == 'resnet':
        backbone = dict(type='CLIPResNetWithAttention', model=str(clip_json),
                        input_resolution=64)
        levels, index = [32, 64, 128, 256 + K], 3
    else:
        backbone = dict(type='CLIPVisionTransformer', model=str(clip_json), input_resolution=64,
                        out_indices=(0, 1, 2, 3), drop_path_rate=0.1, norm_cfg=dict(type='BN'))
        levels, index = [32, 32, 32 + K, 32], 2
    ce = dict(type='CrossEntropyLoss', use_sigmoid=False)
    return dict(
        type='OpenVocabEncoderDecoder', backbone=backbone, vocabulary=names,
        text_encoder=dict(context_length=13), prompt=dict(type='ContextPrompt'),
        decode_head=dict(
            type='DenseCLIPHead', score_concat_index=index,
            context_decoder=dict(type='ContextDecoder', transformer_width=16,
                                 transformer_heads=2, transformer_layers=2, visual_dim=32),
            neck=dict(type='FPN', in_channels=levels, out_channels=16, num_outs=4),
            decode_head=dict(type='FPNHead', in_channels=[16] * 4, in_index=[0, 1, 2, 3],
                             feature_strides=[4, 8, 16, 32], channels=16, num_classes=K,
                             norm_cfg=dict(type='BN'), align_corners=False,
                             loss_decode=dict(ce, loss_weight=1.0)),
            identity_head=dict(type='IdentityHead', loss_decode=dict(ce, loss_weight=0.4))),
        slide_crop=64, slide_stride=43, logit_scale=1.0)


@pytest.fixture
def clip_json(tmp_path):
    def write(arch: str) -> Path:
        path = tmp_path / f'{arch}.json'
        path.write_text(json.dumps(CLIPS[arch]))
        return path
    return write


def build(cfg: dict):
    init_default_scope('mmseg')
    torch.manual_seed(0)
    return MODELS.build(cfg)


@pytest.mark.parametrize('arch', ['resnet', 'vit'])
def test_converted_release_gives_the_released_outputs(arch, clip_json, tmp_path):
    state = released_state_dict(arch, num_classes=len(NAMES), seed=1)
    released = tmp_path / 'released.pth'
    torch.save({'state_dict': state, 'meta': {'CLASSES': NAMES, 'iter': 80000}}, released)
    ours = tmp_path / 'ours.pth'
    assert converter().main([str(released), str(ours)]) == 0
    model = build(model_cfg(arch, clip_json(arch)))
    load_checkpoint_strict(model, ours)  # every key and shape
    model.eval()
    images = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    ref = released_forward(state, arch, images, released_tokenize(NAMES))
    with torch.no_grad():
        dense = model.backbone.forward_dense(images)
        text = model.encode_text(model.vocabulary)
        t = model.decode_head.class_embeddings(dense, text)
        logits, score = model.decode_head(dense, text)
    close = dict(atol=2e-5, rtol=1e-4)
    for got, want in zip(dense.levels, ref['levels']):
        torch.testing.assert_close(got, want, **close)
    torch.testing.assert_close(dense.global_feats, ref['global'], **close)
    torch.testing.assert_close(dense.feats, ref['dense'], **close)
    torch.testing.assert_close(t, ref['text'], **close)
    torch.testing.assert_close(score, ref['score_map'], **close)
    torch.testing.assert_close(logits, ref['logits'], **close)
    # the identity loss of the converted model is the released one on the same score map
    gt = torch.randint(0, len(NAMES), (2, 64, 96), generator=torch.Generator().manual_seed(1))
    gt[:, :5] = 255
    samples = [SegDataSample(gt_sem_seg=PixelData(data=g[None])) for g in gt]
    with torch.no_grad():
        ours_loss = model.decode_head.identity_head.loss_by_feat(score / 0.07, samples)
    torch.testing.assert_close(ours_loss['loss_ce'], released_identity_loss(score, gt))


def test_converter_rejects_foreign_keys_and_strict_loading_lists_missing_ones(clip_json,
                                                                             tmp_path):
    conv = converter()
    state = released_state_dict('resnet', num_classes=len(NAMES))
    with pytest.raises(KeyError, match=r"keys of no released DenseCLIP module: \['head.w'\]"):
        conv.convert({**state, 'head.w': torch.zeros(1)})
    state.pop('gamma')
    torch.save({'state_dict': state}, tmp_path / 'released.pth')
    conv.main([str(tmp_path / 'released.pth'), str(tmp_path / 'ours.pth')])
    model = build(model_cfg('resnet', clip_json('resnet')))
    with pytest.raises(ValueError, match=r"missing \(1\): \['decode_head.gamma'\]"):
        load_checkpoint_strict(model, tmp_path / 'ours.pth')
    (tmp_path / 'broken.pth').write_bytes(b'not a checkpoint')
    assert conv.main([str(tmp_path / 'broken.pth'), str(tmp_path / 'out.pth')]) == 1
    assert not (tmp_path / 'out.pth').exists()


def test_attention_pool_global_output_is_open_clips(clip_json):
    """Query 0 of the full attention pool is CLIP's pooled embedding."""
    torch.manual_seed(0)
    pool = AttentionPool2d(7, 64, 4, 32).eval()
    x = torch.randn(2, 64, 7, 7)
    g, z = attention_pool(pool, x)
    torch.testing.assert_close(g, pool(x), atol=1e-5, rtol=1e-5)
    assert z.shape == (2, 32, 7, 7)
    # every location is a query too: z at (i, j) is the output for token 1 + i*7 + j
    tokens = torch.cat([x.flatten(2).mean(2, keepdim=True), x.flatten(2)], 2).permute(2, 0, 1)
    tokens = tokens + pool.positional_embedding[:, None]
    out, _ = torch.nn.functional.multi_head_attention_forward(
        tokens, tokens, tokens, 64, 4, None,
        torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]), None, None, False,
        0.0, pool.c_proj.weight, pool.c_proj.bias, training=False, need_weights=False,
        use_separate_proj_weight=True, q_proj_weight=pool.q_proj.weight,
        k_proj_weight=pool.k_proj.weight, v_proj_weight=pool.v_proj.weight)
    torch.testing.assert_close(z[:, :, 3, 5], out[1 + 3 * 7 + 5], atol=1e-5, rtol=1e-5)


def test_context_decoder_with_one_memory_token_by_hand():
    """With one memory token every cross-attention weight is 1: the cross-attention output is
    proj(v_proj(memory)), whatever the queries. Checked layer by layer for one layer."""
    torch.manual_seed(0)
    dec = ContextDecoder(transformer_width=8, transformer_heads=2, transformer_layers=1,
                         visual_dim=6, dropout=0.1).eval()
    text, visual = torch.randn(1, 3, 6), torch.randn(1, 1, 6)
    layer = dec.decoder[0]
    memory = dec.memory_proj(visual)  # (1, 1, 8)
    x = dec.text_proj(text)  # (1, 3, 8)
    # self-attention written out: 2 heads of width 4
    q = layer.norm1(x)
    Q, K, V = (p(q).view(3, 2, 4).transpose(0, 1) for p in (layer.self_attn.q_proj,
                                                              layer.self_attn.k_proj,
                                                              layer.self_attn.v_proj))
    attn = torch.softmax(Q @ K.transpose(1, 2) / 2.0, dim=-1)  # sqrt(4) = 2
    x = x + layer.self_attn.proj((attn @ V).transpose(0, 1).reshape(1, 3, 8))
    x = x + layer.cross_attn.proj(layer.cross_attn.v_proj(memory)).expand(1, 3, 8)
    x = x + layer.mlp(layer.norm3(x))
    want = dec.out_proj(x)
    torch.testing.assert_close(dec(text, visual), want, atol=1e-6, rtol=1e-5)


def test_score_map_is_the_cosine_per_pixel():
    torch.manual_seed(0)
    z, t = torch.randn(2, 5, 3, 4), torch.randn(2, 6, 5)
    s = DenseCLIPHead.score_map(z, t)
    for b, k, i, j in [(0, 0, 0, 0), (1, 5, 2, 3), (0, 3, 1, 2)]:
        want = torch.dot(z[b, :, i, j], t[b, k]) / (z[b, :, i, j].norm() * t[b, k].norm())
        torch.testing.assert_close(s[b, k, i, j], want)


def test_identity_loss_by_hand(clip_json):
    """0.4 x cross-entropy of s / 0.07 upsampled to the labels, averaged over all pixels (the
    ignored ones count as zero: mmseg's avg_non_ignore=False, as mmseg 0.19)."""
    model = build(model_cfg('resnet', clip_json('resnet')))
    score = torch.randn(1, 3, 2, 2)
    gt = torch.tensor([[0, 1, 2, 255], [2, 2, 1, 0], [1, 255, 0, 0], [0, 1, 2, 2]])
    up = F.interpolate(score / 0.07, size=(4, 4), mode='bilinear', align_corners=False)[0]
    logp = up.log_softmax(0)
    total = sum(-logp[gt[i, j], i, j] for i in range(4) for j in range(4) if gt[i, j] != 255)
    want = 0.4 * total / 16
    got = model.decode_head.identity_head.loss_by_feat(
        score / 0.07, [SegDataSample(gt_sem_seg=PixelData(data=gt[None]))])['loss_ce']
    torch.testing.assert_close(got, want)


def test_gamma_zero_leaves_the_prompt_embeddings(clip_json):
    model = build(model_cfg('resnet', clip_json('resnet'))).eval()
    with torch.no_grad():
        model.decode_head.gamma.zero_()
        dense = model.backbone.forward_dense(torch.randn(1, 3, 64, 64))
        text = model.encode_text(model.vocabulary)
        t = model.decode_head.class_embeddings(dense, text)
    torch.testing.assert_close(t[0], text[:, 0])


@pytest.mark.parametrize('arch', ['resnet', 'vit'])
def test_a_few_iterations_reduce_the_loss(arch, clip_json):
    model = build(model_cfg(arch, clip_json(arch))).train()
    g = torch.Generator().manual_seed(0)
    images = torch.randn(2, 3, 64, 64, generator=g)
    labels = torch.zeros(2, 1, 64, 64, dtype=torch.long)
    labels[:, :, :, 32:] = 1
    labels[:, :, 40:] = 2
    samples = [SegDataSample(gt_sem_seg=PixelData(data=lab)) for lab in labels]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(8):
        out = model.loss(images, samples)
        loss = sum(v for k, v in out.items() if 'loss' in k)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < 0.8 * losses[0], losses


def test_labels_outside_the_vocabulary_are_refused(clip_json):
    model = build(model_cfg('resnet', clip_json('resnet'))).train()
    bad = SegDataSample(gt_sem_seg=PixelData(data=torch.full((1, 64, 64), 5)))
    with pytest.raises(ValueError, match='label 5 in a training batch, but the vocabulary has 3'):
        model.loss(torch.randn(1, 3, 64, 64), [bad])


def test_open_vocabulary_prediction_with_a_new_class(clip_json):
    """The score map names classes never trained on; the decoder stays on its K classes."""
    cfg = model_cfg('vit', clip_json('vit'))
    cfg['decode_head']['test_output'] = 'score_map'
    cfg['test_vocabulary'] = NAMES + ['road']
    cfg['slide_crop'] = 0  # the whole image in one pass
    model = build(cfg).eval()
    image = torch.randn(1, 3, 64, 96)
    out = model.predict(image)[0]
    assert out.seg_logits.data.shape == (4, 64, 96)
    with torch.no_grad():
        dense = model.backbone.forward_dense(image)
        text = model.encode_text(model.test_vocabulary)
        s = model.decode_head.score_map(dense.feats, model.decode_head.class_embeddings(
            dense, text)) / 0.07
    want = F.interpolate(s, size=(64, 96), mode='bilinear', align_corners=False).softmax(1)
    torch.testing.assert_close(out.seg_logits.data, want[0], atol=1e-5, rtol=1e-4)
    # a sample's own vocabulary wins over the configured one
    sample = SegDataSample(metainfo=dict(classes=('car', 'road'), ori_shape=(64, 96),
                                         img_shape=(64, 96)))
    assert model.predict(image, [sample])[0].seg_logits.data.shape == (2, 64, 96)


def test_text_side_and_context_decoder_build_in_mmdet_configs(clip_json):
    """DenseCLIP's detectors (mmdet) reuse the backbone, the text encoder, the prompt and the
    context decoder through ``custom_imports=dict(imports=['denseclip'])``."""
    from mmdet.registry import MODELS as MMDET

    init_default_scope('mmdet')
    backbone = MMDET.build(dict(type='CLIPResNetWithAttention', model=str(clip_json('resnet')),
                                input_resolution=1344 // 32 * 32))
    assert backbone.visual.attnpool.positional_embedding.shape[0] == 42 * 42 + 1
    encoder = MMDET.build(dict(type='OpenCLIPTextEncoder', clip=backbone.clip,
                               source=backbone.source, context_length=13))
    prompt = MMDET.build(dict(type='ContextPrompt', width=encoder.width))
    decoder = MMDET.build(dict(type='ContextDecoder', transformer_width=16, transformer_heads=2,
                               transformer_layers=1, visual_dim=32))
    text = prompt(encoder, ['car', 'person'])[:, 0][None]  # (1, K, E)
    assert decoder(text, torch.randn(1, 5, 32)).shape == (1, 2, 32)


def test_a_head_that_returns_probabilities_is_not_softmaxed_again(clip_json):
    """OpenVocabHead.scores='probs' (mask-classification heads): the merged window scores are
    the class probabilities; 'logits' get softmax(logit_scale · scores)."""
    model = build(model_cfg('resnet', clip_json('resnet'))).eval()
    scores = torch.rand(3, 4, 5)
    torch.testing.assert_close(model.probabilities(scores), scores.softmax(0))
    model.decode_head.scores = 'probs'
    torch.testing.assert_close(model.probabilities(scores), scores)


def test_trained_segmentor_shares_the_precision_rules(clip_json):
    """bf16 autocast on the CPU agrees with fp32 on the labels; fp16 is CUDA-only, as for the
    training-free segmentor (one check in SlideSegmentor.amp_dtype)."""
    cfg = model_cfg('resnet', clip_json('resnet'))
    image = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    fp32 = build(cfg).eval()
    bf16 = build(dict(cfg, dtype='bf16')).eval()
    bf16.load_state_dict(fp32.state_dict())
    a, b = (m.predict(image)[0].seg_logits.data for m in (fp32, bf16))
    assert (a.argmax(0) == b.argmax(0)).float().mean() > 0.9
    with pytest.raises(ValueError, match="OpenVocabEncoderDecoder: dtype='fp16'.*CUDA only"):
        build(dict(cfg, dtype='fp16')).eval().predict(image)
