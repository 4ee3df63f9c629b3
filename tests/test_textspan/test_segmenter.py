"""The zero-shot segmenter: scores, post-processing and threshold by hand; the registered
model equals the composition of its functions; bad input."""
import copy
import json

import pytest
import torch
from mmseg.structures import SegDataSample

from conftest import TINY_VIT
from denseclip.models.textspan import (TextSpanSegmentor, binarise_map, decompose_image,
                                       patch_scores, postprocess_map)
from denseclip.registry import MODELS


def test_patch_scores_by_hand():
    # classifier: 3 classes on axes; the embedding picks class 1
    classifier = torch.eye(3)
    embedding = torch.tensor([[0.1, 2.0, 0.3]])
    tokens = torch.tensor([[[9., 9., 9.],  # [CLS]: ignored
                            [3., 0., 0.], [0., 3., 0.], [1., 1., 1.], [0., 0., -3.]]])
    # score = t[1] - mean(t): 0-1, 3-1, 1-1, 0-(-1)
    expected = torch.tensor([[[-1., 2.], [0., 1.]]])
    torch.testing.assert_close(patch_scores(tokens, embedding, classifier, (2, 2)), expected)


def test_postprocess_and_threshold_by_hand():
    scores = torch.tensor([[-1., 0.], [1., 3.]])
    res = postprocess_map(scores, patch_size=1)  # clip: [[0, 0], [1, 3]], min-max: / 3
    torch.testing.assert_close(res, torch.tensor([[0., 0.], [1 / 3, 1.]]))
    labels, two = binarise_map(res)  # mean 1/3: strictly above it is foreground
    assert labels.tolist() == [[0, 0], [0, 1]]
    torch.testing.assert_close(two, torch.stack([1 - res, res]))
    # upsampling by the patch size is bilinear, align_corners=False (F.interpolate default)
    up = postprocess_map(torch.tensor([[0., 1.]]), patch_size=2)
    torch.testing.assert_close(up, torch.tensor([[0., 0.25, 0.75, 1.]] * 2))


def test_constant_map_is_all_background_with_zero_scores():
    """Everything clipped to 0: 0/0 is NaN as released; NaN > mean is False, NaN -> 0."""
    res = postprocess_map(-torch.ones(2, 2), patch_size=2)
    assert torch.isnan(res).all()
    labels, two = binarise_map(res)
    assert labels.sum() == 0 and two.abs().sum() == 0


@pytest.fixture
def tiny_model_cfg(tmp_path):
    path = tmp_path / 'tiny.json'
    path.write_text(json.dumps(TINY_VIT))
    return dict(type='TextSpanSegmentor', backbone=dict(type='CLIPViT', model=str(path)),
                class_names=['cat', 'dog', 'cat', 'bird'], templates='{}')


def test_segmenter_is_the_composition_of_its_functions(tiny_model_cfg):
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg).eval()
    emb = model.class_embeddings
    assert emb.shape[0] == 4 and torch.equal(emb[0], emb[2])  # repeated name: repeated row
    inputs = torch.randn(2, 3, 48, 64, generator=torch.Generator().manual_seed(1))
    out = model.predict(inputs, [SegDataSample(), SegDataSample()])
    with torch.no_grad():
        dec = decompose_image(model.backbone, inputs)
        scores = patch_scores(dec.tokens, dec.embedding, emb, dec.grid)
    for i in range(2):
        labels, two = binarise_map(postprocess_map(scores[i], 16))
        assert torch.equal(out[i].pred_sem_seg.data[0], labels)
        torch.testing.assert_close(out[i].seg_logits.data, two)
        assert out[i].pred_sem_seg.shape == (48, 64)
    assert model._forward(inputs).shape == (2, 1, 48, 64)
    assert model.encode_decode(inputs, []).shape == (2, 2, 48, 64)


def test_bad_config_is_refused(tiny_model_cfg, tmp_path):
    cfg = copy.deepcopy(tiny_model_cfg)
    cfg['class_names'] = str(tmp_path / 'missing.txt')
    with pytest.raises(FileNotFoundError, match='missing.txt.*one class name a line'):
        MODELS.build(cfg)
    cfg['class_names'] = ['cat']
    with pytest.raises(ValueError, match='at least 2'):
        MODELS.build(cfg)
    with pytest.raises(RuntimeError, match='no loss'):
        MODELS.build(tiny_model_cfg).loss(torch.zeros(1, 3, 64, 64), [])
    assert issubclass(MODELS.get('TextSpanSegmentor'), TextSpanSegmentor)
