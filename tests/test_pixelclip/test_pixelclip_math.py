"""PixelCLIP's math against hand computations: Sinkhorn-Knopp (single and two processes), the
EMA update, k-means, mask pooling + clustering targets, the learned class names."""
from __future__ import annotations

import os
import socket

import numpy as np
import open_clip
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from conftest import TINY_VIT, make_clip
from torch import nn

from denseclip.models.heads.pixelclip import (ConvHead, LearnedClassNames, cluster_targets,
                                              ema_update, sinkhorn_knopp)
from denseclip.models.mask_sources import kmeans
from denseclip.models.text import OpenCLIPTextEncoder


def reference_sinkhorn(p: np.ndarray, iters: int) -> np.ndarray:
    """SwAV's loop in numpy on probabilities p (N, M)."""
    Q = p.T.copy()
    M, N = Q.shape
    Q /= Q.sum()
    for _ in range(iters):
        Q /= Q.sum(1, keepdims=True)
        Q /= M
        Q /= Q.sum(0, keepdims=True)
        Q /= N
    return (Q * N).T


def test_sinkhorn_hand_worked_one_iteration():
    # softmax rows p = [[0.9, 0.1], [0.6, 0.4]]: Q = p^T / 2 = [[.45, .3], [.05, .2]];
    # rows -> 1/2 each: [[.3, .2], [.1, .4]]; columns -> 1/2 each: [[.375, 1/6], [.125, 1/3]];
    # times N = 2, transposed: sample 0 -> (.75, .25), sample 1 -> (1/3, 2/3).
    p = torch.tensor([[0.9, 0.1], [0.6, 0.4]], dtype=torch.float64)
    q = sinkhorn_knopp(p.log(), num_iters=1)
    torch.testing.assert_close(q.double(), torch.tensor([[0.75, 0.25], [1 / 3, 2 / 3]],
                                                        dtype=torch.float64))


def test_sinkhorn_matches_reference_rows_sum_to_one_and_balances_clusters():
    torch.manual_seed(0)
    logits = torch.randn(30, 5) * 3
    q = sinkhorn_knopp(logits, num_iters=3)
    ref = reference_sinkhorn(logits.softmax(-1).double().numpy(), 3)
    np.testing.assert_allclose(q.numpy(), ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(q.sum(1), torch.ones(30))
    # the released 3 iterations balance approximately; many iterations give equal mass N/M
    many = sinkhorn_knopp(logits, num_iters=200)
    torch.testing.assert_close(many.sum(0), torch.full((5,), 6.0), atol=1e-3, rtol=0)
    raw = logits.softmax(-1).sum(0)
    assert (q.sum(0) - 6).abs().max() < (raw - 6).abs().max()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _sinkhorn_worker(rank: int, port: int, logits: torch.Tensor, out: dict) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2)
    try:
        half = logits.chunk(2)[rank]
        out[rank] = sinkhorn_knopp(half, num_iters=3)
    finally:
        dist.destroy_process_group()


def test_sinkhorn_all_reduces_over_processes():
    """Two processes holding half the masks each get the rows of one global Sinkhorn."""
    torch.manual_seed(1)
    logits = torch.randn(12, 4) * 2
    manager = mp.Manager()
    out = manager.dict()
    mp.spawn(_sinkhorn_worker, args=(_free_port(), logits, out), nprocs=2, join=True)
    joint = torch.cat([out[0], out[1]])
    torch.testing.assert_close(joint, sinkhorn_knopp(logits, num_iters=3))
    # and differs from each process balancing alone
    alone = torch.cat([sinkhorn_knopp(h, num_iters=3) for h in logits.chunk(2)])
    assert not torch.allclose(joint, alone, atol=1e-4)


def test_sinkhorn_empty_batch():
    assert sinkhorn_knopp(torch.zeros(0, 3)).shape == (0, 3)


def test_ema_update_hand_values_and_name_check():
    student, teacher = nn.Linear(2, 1), nn.Linear(2, 1)
    with torch.no_grad():
        student.weight.fill_(3.0), student.bias.fill_(-1.0)
        teacher.weight.fill_(1.0), teacher.bias.fill_(1.0)
    ema_update(student, teacher, 0.9)  # 0.9 * 1 + 0.1 * 3 = 1.2; 0.9 * 1 + 0.1 * -1 = 0.8
    torch.testing.assert_close(teacher.weight, torch.full((1, 2), 1.2))
    torch.testing.assert_close(teacher.bias, torch.full((1,), 0.8))
    torch.testing.assert_close(student.weight, torch.full((1, 2), 3.0))  # untouched
    with pytest.raises(KeyError, match='differ'):
        ema_update(nn.Linear(2, 1), nn.Sequential(nn.Linear(2, 1)), 0.9)


def test_kmeans_hand_made_blobs():
    # Two far blobs: from any two distinct starting points Lloyd ends at the blobs (by hand:
    # starting at 0 and 1, 100 and 101 join 1's cluster, whose mean 67.3 then takes them alone).
    x = torch.tensor([[0.], [1.], [100.], [101.]])
    for seed in range(6):
        ids = kmeans(x, 2, generator=torch.Generator().manual_seed(seed))
        assert ids[0] == ids[1] and ids[2] == ids[3] and ids[0] != ids[2]
    with pytest.raises(ValueError, match='k=9'):
        kmeans(x, 9)


def reference_lloyd(x: np.ndarray, init: np.ndarray, iters: int = 100) -> np.ndarray:
    c = x[init].copy()
    for _ in range(iters):
        ids = ((x[:, None] - c[None]) ** 2).sum(-1).argmin(1)
        new = np.stack([x[ids == j].mean(0) if (ids == j).any() else c[j]
                        for j in range(len(c))])
        shift, c = ((new - c) ** 2).sum(), new
        if shift <= 1e-4:
            break
    return ((x[:, None] - c[None]) ** 2).sum(-1).argmin(1)


def test_kmeans_equals_reference_lloyd_from_the_same_start():
    torch.manual_seed(0)
    x = torch.cat([torch.randn(15, 2), torch.randn(15, 2) + 4, torch.randn(15, 2) - 4])
    init = torch.randperm(45, generator=torch.Generator().manual_seed(3))[:3].numpy()
    ids = kmeans(x, 3, generator=torch.Generator().manual_seed(3))
    np.testing.assert_array_equal(ids.numpy(), reference_lloyd(x.double().numpy(), init))


def test_kmeans_converged_centroids_are_means():
    torch.manual_seed(0)
    x = torch.cat([torch.randn(20, 3), torch.randn(20, 3) + 8])
    ids = kmeans(x, 2, generator=torch.Generator().manual_seed(0))
    centroids = torch.stack([x[ids == c].mean(0) for c in range(2)])
    # Lloyd's fixed point: every sample is nearest to its own cluster's mean
    torch.testing.assert_close(torch.cdist(x, centroids).argmin(1), ids)


def test_cluster_targets_hand_case():
    # one image, 8x8: teacher = e0 on the left half, e1 on the right; clusters (e1, e0, e2)
    teacher = torch.zeros(1, 3, 8, 8)
    teacher[0, 0, :, :4] = 1
    teacher[0, 1, :, 4:] = 1
    left = torch.zeros(8, 8)
    left[:, :4] = 1
    dot = torch.zeros(8, 8)
    dot[0, 0] = 1  # one pixel: dropped (<= 1 pixel)
    masks = [torch.stack([left, 1 - left, dot])]
    clusters = torch.eye(3)[[1, 0, 2]]
    targets = cluster_targets(masks, teacher, clusters, eps=100.0, size=(8, 8), num_iters=3)
    assert targets.shape == (1, 3, 8, 8)
    torch.testing.assert_close(targets[0, 1], left)  # left mask -> cluster of e0
    torch.testing.assert_close(targets[0, 0], 1 - left)
    torch.testing.assert_close(targets[0, 2], torch.zeros(8, 8))
    with pytest.raises(ValueError, match='2 mask sets for 1 images'):
        cluster_targets(masks * 2, teacher, clusters, 100.0, (8, 8))


def test_cluster_targets_merge_and_clamp():
    # two overlapping masks that land in the same cluster: their union, clamped to 1
    teacher = torch.ones(1, 2, 4, 4)
    a = torch.zeros(4, 4)
    a[:2] = 1
    b = torch.zeros(4, 4)
    b[1:3] = 1
    clusters = torch.tensor([[1.0, 1.0], [1.0, -1.0]])
    t = cluster_targets([torch.stack([a, b])], teacher, clusters, 100.0, (4, 4), num_iters=0)
    torch.testing.assert_close(t[0, 0], (a + b).clamp(0, 1))


@pytest.fixture(scope='module')
def text_encoder():
    return OpenCLIPTextEncoder(clip=make_clip(TINY_VIT), frozen=True)


def test_learned_names_init_and_forward_equal_tokenised_prompt(text_encoder):
    names = LearnedClassNames(text_encoder, num_names=3, name_length=4)
    torch.manual_seed(0)  # the released draw: global seed 0, randint(vocab - 10)
    ids = torch.randint(text_encoder.token_embedding.num_embeddings - 10, (3, 4))
    torch.testing.assert_close(names.names.data, text_encoder.token_embedding(ids))
    # put the embeddings of real words in: the output is the encoder's on the written prompt
    words = ['red dog big car', 'blue cat small tree', 'green sky tall house']
    tok = open_clip.get_tokenizer('ViT-B-16')
    word_ids = torch.stack([tok([w])[0, 1:5] for w in words])  # one BPE token per word
    with torch.no_grad():
        names.names.copy_(text_encoder.token_embedding(word_ids))
    expected = text_encoder.encode_tokens(
        text_encoder.tokenize([f'A photo of a {w} in the scene' for w in words]))
    torch.testing.assert_close(names(text_encoder), expected, atol=1e-5, rtol=1e-5)


def test_learned_names_gradients_reach_only_the_names(text_encoder):
    names = LearnedClassNames(text_encoder, num_names=2, name_length=4)
    names(text_encoder).sum().backward()
    assert names.names.grad is not None and names.names.grad.abs().sum() > 0
    assert all(p.grad is None for p in text_encoder.parameters())


def test_learned_names_bad_input(text_encoder):
    with pytest.raises(ValueError, match='exactly one'):
        LearnedClassNames(text_encoder, template='a {} and a {}')
    with pytest.raises(ValueError, match='text_encoder is needed'):
        LearnedClassNames()


def test_conv_head_released_layout_and_upsampling():
    head = ConvHead((64, 64, 32))
    keys = set(head.state_dict())
    for key in ('conv0.weight', 'up1.weight', 'conv1.double_conv.0.weight',
                'conv1.double_conv.1.weight', 'conv1.double_conv.4.bias', 'up2.bias',
                'conv2.double_conv.3.weight', 'proj.weight', 'proj.bias'):
        assert key in keys
    assert head.conv1.double_conv[1].num_groups == 4  # GroupNorm(C // 16, C)
    assert head(torch.randn(2, 1, 5, 7)).shape == (2, 1, 20, 28)
    with pytest.raises(ValueError, match='multiples of 16'):
        ConvHead((64, 24, 32))


def test_bce_only_over_covered_pixels():
    """PixelCLIPHead's loss equals a hand BCE over pixels some mask covers."""
    from denseclip.models.backbones import DenseOutput
    from denseclip.models.heads.pixelclip import PixelCLIPHead

    torch.manual_seed(0)
    head = PixelCLIPHead(conv_head=dict(type='ConvHead', channels=(16, 16, 16)), eps=100.0,
                         mask_size=(8, 8))
    feats = torch.randn(1, 4, 2, 2)
    teacher = torch.randn(1, 4, 2, 2)
    clusters = torch.randn(3, 4)
    mask = torch.zeros(1, 8, 8)
    mask[0, :3, :5] = 1
    dense = DenseOutput(feats=feats, grid=(2, 2), tokens=[], images=torch.zeros(1, 3, 32, 32))
    loss = head.loss(dense, clusters, [mask], teacher)['loss_masks']
    targets = cluster_targets([mask], teacher, clusters, 100.0, (8, 8))
    logits = head.mask_logits(feats, clusters)
    covered = mask[0].bool()
    expected = F.binary_cross_entropy_with_logits(logits[0][:, covered].T, targets[0][:, covered].T)
    torch.testing.assert_close(loss, expected)
