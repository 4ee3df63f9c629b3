"""The open-vocabulary segmentor: slide inference, synonyms, thresholds, mmseg contract."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_VIT, make_clip
from mmseg.structures import SegDataSample

import denseclip
from denseclip.models.dense import kspd_refine
from denseclip.models.refiners import pamr
from denseclip.models.segmentors import OpenVocabSegmentor, slide_windows
from denseclip.models.segmentors.base import apply_area_threshold, merge_synonyms

VOCAB = ['sky', ['person', 'pedestrian', 'man'], 'car', 'grass']


@pytest.fixture(scope='module')
def clip():
    return make_clip(TINY_VIT)


def make_segmentor(clip, **kwargs):
    backbone = dict(type='CLIPViT', model=clip, dense=dict(type='SCLIPAttention'),
                    pos_interp='scale_factor')
    return OpenVocabSegmentor(backbone=backbone, vocabulary=VOCAB, **kwargs).eval()


def reference_slide(seg, image, crop, stride, pad=False):
    """SCLIP/ClearCLIP ``forward_slide``: one window at a time, written from the released loop."""
    _, _, H, W = image.shape
    emb = seg.classifier.embeddings
    preds = image.new_zeros((1, emb.shape[0], H, W))
    count = image.new_zeros((1, 1, H, W))
    h_grids = max(H - crop + stride - 1, 0) // stride + 1
    w_grids = max(W - crop + stride - 1, 0) // stride + 1
    for hi in range(h_grids):
        for wi in range(w_grids):
            y1, x1 = hi * stride, wi * stride
            y2, x2 = min(y1 + crop, H), min(x1 + crop, W)
            y1, x1 = max(y2 - crop, 0), max(x2 - crop, 0)
            window = image[:, :, y1:y2, x1:x2]
            h, w = window.shape[2:]
            if pad:  # ClearCLIP compute_padsize
                lr, tb = (16 - w % 16) % 16, (16 - h % 16) % 16
                l, t = lr // 2, tb // 2
                window = F.pad(window, (l, lr - l, t, tb - t))
            else:  # a stride-16 conv ignores the remainder
                l = t = 0
                window = window[:, :, :h // 16 * 16, :w // 16 * 16]
            feats = seg.backbone.encode_dense(window)
            feats = feats / feats.norm(dim=1, keepdim=True)
            logits = torch.einsum('behw,qe->bqhw', feats, emb)
            size = window.shape[2:] if pad else (h, w)  # upsample to the (padded) window
            logits = F.interpolate(logits, size=size, mode='bilinear')
            logits = logits[:, :, t:t + h, l:l + w]
            preds[:, :, y1:y2, x1:x2] += logits
            count[:, :, y1:y2, x1:x2] += 1
    return preds / count


def test_slide_windows_reference_grid():
    # A 336x448 VOC image under SCLIP (224/112): 2 rows x 3 columns, last ones shifted back.
    boxes = slide_windows(336, 448, 224, 112)
    assert boxes == [(0, 224, 0, 224), (0, 224, 112, 336), (0, 224, 224, 448),
                     (112, 336, 0, 224), (112, 336, 112, 336), (112, 336, 224, 448)]
    assert slide_windows(100, 150, 224, 112) == [(0, 100, 0, 150)]  # smaller than the crop
    assert slide_windows(230, 224, 224, 112) == [(0, 224, 0, 224), (6, 230, 0, 224)]


@pytest.mark.parametrize('size,pad', [((80, 112), False), ((70, 101), False), ((70, 101), True)])
def test_batched_slide_inference_equals_the_reference_loop(clip, size, pad):
    seg = make_segmentor(clip, slide_crop=48, slide_stride=32, pad_to_patch=pad, window_batch=3)
    image = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got = seg.slide_inference(image)
        want = reference_slide(seg, image, 48, 32, pad=pad)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_a_side_shorter_than_a_patch_is_zero_padded_to_one(clip):
    """A 7 x 48 window (a 10 x 3000 picture resized) scores as the window zero-padded to
    16 x 48, cropped back; the long side keeps the stretch rule."""
    seg = make_segmentor(clip, slide_crop=48, slide_stride=32)
    crops = torch.randn(2, 3, 7, 53, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got = seg.window_logits(crops)
        padded = seg.window_logits(F.pad(crops, (0, 0, 0, 9)))  # 16 x 53
    assert got.shape == (2, 6, 7, 53)
    torch.testing.assert_close(got, padded[:, :, :7])
    image = torch.randn(1, 3, 5, 300)  # the whole slide path: every window is 5 pixels high
    with torch.no_grad():
        assert seg.slide_inference(image).isfinite().all()


def test_large_vocabularies_warn_of_their_memory(clip, caplog):
    """window_batch x Q x crop² float32 scores per batch of windows: stated when over 1 GiB."""
    seg = make_segmentor(clip, slide_crop=224, slide_stride=112, window_batch=16)
    assert seg.warn_vocabulary_memory(6) == pytest.approx(16 * 6 * 224 ** 2 * 4 / 2 ** 30)
    with caplog.at_level('WARNING'):
        seg.set_vocabulary([f'thing {i}' for i in range(400)])  # 16 x 400 x 224² x 4 B
    assert '400 text queries: each batch of 16 windows of 224² holds 1.2 GiB' in caplog.text
    assert 'lower window_batch' in caplog.text
    caplog.clear()
    with caplog.at_level('WARNING'):
        seg.set_vocabulary(VOCAB)
    assert 'text queries' not in caplog.text


def test_window_batch_does_not_change_the_result(clip):
    image = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        one = make_segmentor(clip, slide_crop=48, slide_stride=32, window_batch=1)
        many = make_segmentor(clip, slide_crop=48, slide_stride=32, window_batch=16)
        torch.testing.assert_close(one.slide_inference(image), many.slide_inference(image))


def test_synonyms_are_merged_by_max_after_the_softmax_over_all_queries(clip):
    seg = make_segmentor(clip, logit_scale=10.0)
    # queries: sky, person, pedestrian, man, car, grass -> classes 0, 1, 1, 1, 2, 3
    logits = torch.tensor([0.1, 0.3, 0.5, 0.2, 0.4, 0.0]).view(6, 1, 1).expand(6, 2, 3)
    probs, labels = seg.postprocess(logits.clone())
    q = torch.softmax(10 * torch.tensor([0.1, 0.3, 0.5, 0.2, 0.4, 0.0]), 0)
    want = torch.stack([q[0], q[1:4].max(), q[4], q[5]])
    torch.testing.assert_close(probs[:, 0, 0], want)
    assert (labels == 1).all()  # 'pedestrian' wins for class 1 although 'car' > 'person'
    assert merge_synonyms(torch.rand(4, 2, 2), torch.arange(4), 4).shape == (4, 2, 2)


def test_prob_thd_sends_unconfident_pixels_to_class_zero(clip):
    seg = make_segmentor(clip, logit_scale=1.0, prob_thd=0.2)
    logits = torch.zeros(6, 1, 2)
    logits[4, 0, 0] = 3.0  # confident 'car'
    probs, labels = seg.postprocess(logits)  # the second pixel is uniform: 1/6 < 0.2
    assert labels.tolist() == [[2, 0]]
    assert probs[:, 0, 1].max() == pytest.approx(1 / 6)


def test_renormalize_divides_the_merged_probabilities_by_their_sum(clip):
    """NACLIP's renormalisation after the synonym max: probabilities sum to 1, labels and the
    prob_thd decision are those of the merged probabilities."""
    logits = torch.randn(6, 3, 4, generator=torch.Generator().manual_seed(0))
    merged, _ = make_segmentor(clip, logit_scale=5.0).postprocess(logits.clone())
    thd = float(merged.max(0).values.median())  # half the pixels fall below it
    plain = make_segmentor(clip, logit_scale=5.0, prob_thd=thd)
    renorm = make_segmentor(clip, logit_scale=5.0, prob_thd=thd, renormalize=True)
    _, labels = plain.postprocess(logits.clone())
    probs, labels2 = renorm.postprocess(logits.clone())
    torch.testing.assert_close(probs, merged / merged.sum(0, keepdim=True))
    torch.testing.assert_close(probs.sum(0), torch.ones(3, 4))
    assert torch.equal(labels, labels2)
    below = merged.max(0).values < thd
    assert below.any() and (labels[below] == 0).all()
    # the threshold saw the merged probabilities: renormalised, some of those pixels pass it
    assert (probs.max(0).values[below] >= thd).any()


def test_area_thd_as_sclip_defines_it():
    # 10 pixels: background 4, class 1 five, class 2 one. Non-background area = 6;
    # area_thd=0.2 keeps class 1 (5 > 1.2) and zeroes class 2 (1 <= 1.2).
    probs = torch.zeros(3, 1, 10)
    probs[0, 0, :4] = 0.9
    probs[1, 0, 4:9] = 0.8
    probs[2, 0, 9] = 0.7
    probs[0, 0, 9] = 0.2  # second best at the class-2 pixel
    out = apply_area_threshold(probs, 0.2)
    assert torch.equal(out[:2], probs[:2]) and out[2].abs().sum() == 0
    assert out.argmax(0)[0, 9] == 0
    kept = apply_area_threshold(probs, 1 / 6 - 1e-3)  # 1 > 6 * 0.1657: class 2 survives
    assert torch.equal(kept, probs)


def test_pamr_refines_the_raw_cosine_at_image_size(clip):
    plain = make_segmentor(clip, slide_crop=0)
    refined = make_segmentor(clip, slide_crop=0,
                             refiner=dict(type='PAMRRefiner', num_iter=3, dilations=(1, 2)))
    image = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        logits = plain.inference(image, (50, 70))
        small = F.interpolate(image, size=(50, 70), mode='bilinear', align_corners=False)
        torch.testing.assert_close(refined.inference(image, (50, 70)),
                                   pamr(small, logits, dilations=(1, 2), num_iter=3))


def test_kspd_by_hand():
    # Two classes, three patches. PD drops class 1 (its best probability stays < 0.5);
    # then KS with threshold 1.0 smooths every patch with k normalised over tokens.
    logits = torch.tensor([[0.30, 0.30, 0.30], [0.29, 0.28, 0.27]]).view(1, 2, 1, 3)
    keys = torch.tensor([[1.0, 0.0, 1.0], [0.0, 2.0, 0.0]]).view(1, 2, 1, 3)
    out = kspd_refine(logits, keys, ks_thresh=1.0, pd_thresh=0.6)
    p = torch.softmax(100 * torch.tensor([[0.30, -100.0]] * 3), dim=1)  # (N, K) after PD
    k = keys.view(2, 3).T  # (N, C)
    k = k / k.norm(dim=0, keepdim=True)  # over tokens, as the released code
    torch.testing.assert_close(out.view(2, 3).T, (k @ k.T) @ p)


def test_mmseg_predict_contract_with_batch_padding(clip):
    seg = make_segmentor(clip, slide_crop=48, slide_stride=32)
    inputs = torch.randn(2, 3, 64, 96)
    samples = []
    for img_shape, ori in (((64, 96), (128, 190)), ((48, 64), (48, 64))):
        sample = SegDataSample()
        sample.set_metainfo(dict(img_shape=img_shape, ori_shape=ori))
        samples.append(sample)
    out = seg.predict(inputs, samples)
    assert out[0].pred_sem_seg.data.shape == (1, 128, 190)
    assert out[1].seg_logits.data.shape == (4, 48, 64)
    # The second image is its own 48x64 top-left region; padding is never seen.
    alone = seg.predict(inputs[1:, :, :48, :64].contiguous())[0]
    assert torch.equal(out[1].pred_sem_seg.data, alone.pred_sem_seg.data)
    with pytest.raises(RuntimeError, match='training-free'):
        seg.loss(inputs, samples)


def test_python_api_returns_labels_at_the_images_own_size(tiny_vit):
    config, weights, _ = tiny_vit
    seg = denseclip.OpenVocabSegmenter('sclip', config, weights, short_side=64)
    image = np.random.default_rng(0).integers(0, 255, (75, 101, 3), dtype=np.uint8)
    r = seg(image, classes=VOCAB)
    assert r.labels.shape == (75, 101) and r.labels.dtype == np.int64
    assert r.probs.shape == (4, 75, 101) and r.probs.dtype == np.float32
    # SCLIP keeps the synonym max (below 1 where 'person' spreads over 3 queries); the API
    # returns what the segmentor gives, not a renormalised copy
    assert (r.probs.sum(0) <= 1 + 1e-5).all() and r.probs.sum(0).min() < 0.999
    naclip = denseclip.OpenVocabSegmenter('naclip', config, weights, short_side=64)
    np.testing.assert_allclose(naclip(image, classes=VOCAB).probs.sum(0), 1, rtol=1e-5)
    assert r.classes == ['sky', 'person', 'car', 'grass']
    overlay = r.overlay()
    assert overlay.shape == (75, 101, 3) and overlay.dtype == np.uint8
    assert math.isclose(sum(r.areas().values()), 1.0)
