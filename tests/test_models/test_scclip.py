"""SC-CLIP against a transcription of the released code (SuleBai/SC-CLIP@0417ba9
clip/model.py: lof_pytorch, mean_interpolation, custom_attn, adaptively_aggregate, the
forward's return_all path) and the LOF against scikit-learn."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_VIT, make_clip
from sklearn.neighbors import LocalOutlierFactor

from denseclip.models.backbones import CLIPViT
from denseclip.models.dense import SCCLIPAttention, lof_outliers, lof_scores
from denseclip.models.dense.scclip import fill_from_neighbours

TINY5 = copy.deepcopy(TINY_VIT)
TINY5['vision_cfg'].update(layers=5, image_size=128)  # 8 x 8 tokens at its own size
SETTINGS = dict(pre_adjust_idx=3, post_adjust_idx=1, multi_start_idx=1, multi_end_idx=4,
                lof_neighbors=10, contamination=0.05)


# ---------------------------------------------------------------- the released code, per image
def released_lof(x, n_neighbors, contamination):
    distances = torch.norm(x[:, None] - x[None, :], dim=2, p=2) ** 2
    knn_distances, knn_indices = torch.topk(distances, k=n_neighbors + 1, largest=False)
    knn_distances, knn_indices = knn_distances[:, 1:], knn_indices[:, 1:]
    k_distances = knn_distances[:, -1].unsqueeze(1).expand_as(knn_distances)
    reach_distances = torch.max(knn_distances, k_distances)
    LRD = n_neighbors / torch.nan_to_num(reach_distances.mean(dim=1), nan=1e-6)
    LOF_scores = (LRD[knn_indices] / LRD.unsqueeze(1)).mean(dim=1)
    threshold = torch.quantile(LOF_scores.to(torch.float32), 1 - contamination)
    return torch.where(LOF_scores > threshold)[0], LOF_scores


def released_mean_interpolation(feature_map, top_indices):
    B, C, H, W = feature_map.shape
    kernel = torch.ones(C, 1, 3, 3)
    kernel[:, 0, 1, 1] = 0
    mask = torch.ones((H, W))
    indices = torch.tensor(top_indices, dtype=torch.long)
    mask[indices[:, 0], indices[:, 1]] = 0
    mask = mask[None, None]
    neighbor_sum = F.conv2d(F.pad(feature_map * mask, (1, 1, 1, 1)), kernel, groups=C)
    valid = F.conv2d(F.pad(mask, (1, 1, 1, 1)), kernel[:, :1])
    valid_mask = (valid > 0).float()
    safe = valid.clone()
    safe[safe == 0] = 1
    top = torch.zeros((H, W))
    top[indices[:, 0], indices[:, 1]] = 1
    update = top[None, None] * valid_mask
    return feature_map * (1 - update) + neighbor_sum / safe * update


def released_custom_attn(attn_layer, x, mid_simi):
    num_heads = attn_layer.num_heads
    _, bsz, embed_dim = x.size()
    head_dim = embed_dim // num_heads
    scale = head_dim ** -0.5
    q, k, v = F.linear(x, attn_layer.in_proj_weight, attn_layer.in_proj_bias).chunk(3, dim=-1)
    k = k.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    v = v.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    mid_simi = (mid_simi - torch.mean(mid_simi)) * 3.0
    mid_simi[mid_simi < 0.0] = float('-inf')
    attn_weights = F.softmax(mid_simi.repeat(num_heads, 1, 1), dim=-1)
    attn_weights += F.softmax(torch.bmm(k, k.transpose(1, 2)) * scale, dim=-1)
    attn_weights /= 2
    out = torch.bmm(attn_weights, v).transpose(0, 1).contiguous().view(-1, bsz, embed_dim)
    return attn_layer.out_proj(out)


def released_aggregate(feats, corrs):
    corrs = corrs / (corrs.sum(dim=-1, keepdim=True) + 1e-6)
    return torch.matmul(corrs, feats.permute(1, 0, 2)).permute(1, 0, 2)


def released_patches(model: CLIPViT, image, s):
    """VisionTransformer.forward(image, return_all=True) of one image, before ln_post/proj,
    on the trunk tokens of our backbone (feats_list[i] = tokens after block i, LND)."""
    tokens, (fw, fh) = model.trunk(image)
    feats_list = [t.permute(1, 0, 2) for t in tokens[1:]]
    x = feats_list[-1]
    cls_token = x[:1]
    outliers, _ = released_lof(x[1:].squeeze(1), s['lof_neighbors'], s['contamination'])
    top = [(torch.div(i, fw, rounding_mode='trunc'), i % fw) for i in outliers]
    width = x.shape[-1]
    fmap = released_mean_interpolation(x[1:].permute(1, 2, 0).reshape(1, width, fw, fh), top)
    x = fmap.reshape(1, width, fw * fh).permute(2, 0, 1)
    feats = feats_list[s['pre_adjust_idx']][1:].clone().permute(1, 2, 0).reshape(1, width, fw, fh)
    feats = released_mean_interpolation(feats, top).reshape(1, width, fw * fh).permute(2, 0, 1)
    feats = feats / feats.norm(dim=2, keepdim=True)
    before = torch.matmul(feats.permute(1, 0, 2), feats.permute(1, 2, 0))
    mid = before.clone()
    before[before < 0.4] = 0.0
    x = released_aggregate(x, before)
    blk = model.blocks[-1]
    x = released_custom_attn(blk.attn, blk.ln_1(x), mid) + 0.3 * cls_token
    feats = feats_list[s['post_adjust_idx']][1:].clone()
    feats = feats / feats.norm(dim=2, keepdim=True)
    after = torch.matmul(feats.permute(1, 0, 2), feats.permute(1, 2, 0))
    after[after < 0.4] = 0.0
    x = released_aggregate(x, after)
    re_feats = torch.zeros_like(feats_list[0])
    for i in range(s['multi_start_idx'], s['multi_end_idx']):
        re_feats += feats_list[i]
    cls_token = re_feats[:1]
    re_feats = released_custom_attn(blk.attn, blk.ln_1(re_feats[1:]), mid) + 0.3 * cls_token
    x = x + released_aggregate(re_feats, after)
    return x.permute(1, 0, 2)  # (1, N, D)


@pytest.fixture(scope='module')
def model():
    m = CLIPViT(model=make_clip(TINY5), dense=dict(type='SCCLIPAttention', **SETTINGS),
                pos_interp='scale_factor')
    return m.eval()


def test_dense_features_equal_the_released_forward(model):
    images = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got = model.forward_dense(images)
        want = torch.cat([model.project(released_patches(model, img[None], SETTINGS), (8, 8))
                          for img in images])
    assert got.cls_feats is None  # the released return_all path has no [CLS]
    torch.testing.assert_close(got.feats, want, atol=1e-5, rtol=1e-4)
    # anomalies were found and replaced in both images (5% of 64 tokens: 3 or 4 each)
    tokens, grid = model.trunk(images)
    outliers = lof_outliers(tokens[-1][:, 1:], 10, 0.05)
    assert (outliers.sum(1) >= 3).all()


def test_runs_on_non_square_windows_image_by_image(model):
    images = torch.randn(2, 3, 96, 160, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        both = model.encode_dense(images)
        one = torch.cat([model.encode_dense(img[None]) for img in images])
    assert both.shape == (2, TINY5['embed_dim'], 6, 10) and torch.isfinite(both).all()
    torch.testing.assert_close(both, one, atol=1e-5, rtol=1e-4)  # the S_mid mean is per image


def test_lof_released_rule_is_lof_pytorch():
    x = torch.randn(2, 50, 8, generator=torch.Generator().manual_seed(2))
    got = lof_scores(x, 7, 'released')
    mask = lof_outliers(x, 7, 0.1, 'released')
    for b in range(2):
        idx, want = released_lof(x[b], 7, 0.1)
        torch.testing.assert_close(got[b], want, atol=1e-5, rtol=1e-5)
        assert torch.equal(torch.where(mask[b])[0], idx)


def test_lof_standard_rule_is_scikit_learns():
    x = torch.randn(2, 60, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    got = lof_scores(x, 10, 'standard')
    for b in range(2):
        sk = LocalOutlierFactor(n_neighbors=10).fit(x[b].numpy())
        np.testing.assert_allclose(got[b].numpy(), -sk.negative_outlier_factor_, rtol=1e-6)
    # fewer tokens than neighbours + 1 (a tiny window): every other token is a neighbour
    torch.testing.assert_close(lof_scores(x, 80, 'standard'), lof_scores(x, 59, 'standard'))


def test_fill_from_neighbours_by_hand():
    """A 3 x 3 grid, values = index; outliers 0 (corner) and 4 (centre): the corner takes the
    mean of its non-outlier neighbours 1, 3 (4 is an outlier) = 2; the centre the mean of the
    other 7 = (1+2+3+5+6+7+8)/7."""
    patches = torch.arange(9.).view(1, 9, 1)
    outliers = torch.zeros(1, 9, dtype=torch.bool)
    outliers[0, [0, 4]] = True
    out = fill_from_neighbours(patches, outliers, (3, 3)).flatten()
    assert out[0] == 2.0 and out[4] == pytest.approx(32 / 7)
    assert torch.equal(out[[1, 2, 3, 5, 6, 7, 8]], patches.flatten()[[1, 2, 3, 5, 6, 7, 8]])


def test_block_indices_are_checked(model):
    bad = CLIPViT(model=make_clip(TINY5), dense=dict(type='SCCLIPAttention'))  # ViT-B's 8
    with pytest.raises(ValueError, match=r'pre_adjust_idx reaches block 8; this tower has '
                                         r'blocks 0\.\.3'):
        bad.encode_dense(torch.randn(1, 3, 128, 128))
    with pytest.raises(ValueError, match='multi_start_idx=4 must be below multi_end_idx=4'):
        SCCLIPAttention(multi_start_idx=4, multi_end_idx=4)
