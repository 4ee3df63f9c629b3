"""The decomposition sums to the image embedding; its accumulate-only sums equal the full
tensor's; its [CLS] terms equal a transcription of the released hooks (prs_hook.py and
utils/transformer.py ``forward_per_head``@49f70f3)."""
import copy
import time

import numpy as np
import open_clip
import pytest
import torch

from conftest import TINY_VIT, make_clip
from denseclip.models.backbones import CLIPViT
from denseclip.models.textspan import decompose_image


def tiny(**vision) -> tuple[open_clip.model.CLIP, CLIPViT]:
    cfg = copy.deepcopy(TINY_VIT)
    cfg['vision_cfg'].update(vision)
    clip = make_clip(cfg)
    return clip, CLIPViT(model=clip).eval()


def unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


@pytest.mark.parametrize('vision', [
    dict(),  # CLIP's [CLS] pooling, the released case
    dict(ls_init_value=0.5),  # LayerScale (ls_1, ls_2)
    dict(pool_type='avg'),  # the toy CLIP's pooling: ln_post per token, then the mean
    dict(pool_type='avg', final_ln_after_pool=True),
], ids=['cls', 'layer_scale', 'avg', 'avg_ln_after_pool'])
def test_terms_sum_to_the_image_embedding(vision):
    clip, backbone = tiny(**vision)
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = clip.encode_image(images)  # open_clip's own forward
        dec = decompose_image(backbone, images, keep_terms=True)
    torch.testing.assert_close(dec.embedding, reference, atol=1e-5, rtol=1e-5)
    total = dec.mlps.sum(1) + dec.heads.sum((1, 2))
    torch.testing.assert_close(total, unit(reference), atol=1e-5, rtol=0)
    torch.testing.assert_close(dec.mlps.sum(1) + dec.terms.sum((1, 2, 3)), unit(reference),
                               atol=1e-5, rtol=0)


def test_vit_b16_geometry_sums_to_the_embedding():
    """The real ViT-B/16 image tower (12 blocks, 12 heads of 64, 197 tokens), random weights."""
    torch.manual_seed(0)
    clip = open_clip.model.CLIP(
        embed_dim=512, vision_cfg=dict(image_size=224, patch_size=16, width=768, layers=12,
                                       head_width=64),
        text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=1)).eval()
    backbone = CLIPViT(model=clip).eval()
    images = torch.randn(1, 3, 224, 224)
    start = time.perf_counter()
    with torch.no_grad():
        reference = clip.encode_image(images)
        dec = decompose_image(backbone, images)
    assert time.perf_counter() - start < 30
    assert dec.heads.shape == (1, 12, 12, 512) and dec.tokens.shape == (1, 197, 512)
    torch.testing.assert_close(dec.mlps.sum(1) + dec.heads.sum((1, 2)), unit(reference),
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(dec.tokens.sum(1), dec.heads.sum((1, 2)), atol=1e-5, rtol=0)


@pytest.mark.parametrize('vision', [dict(), dict(pool_type='avg')], ids=['cls', 'avg'])
def test_accumulate_only_equals_the_full_tensor(vision):
    _, backbone = tiny(**vision)
    images = torch.randn(2, 3, 48, 80, generator=torch.Generator().manual_seed(2))  # H != W
    with torch.no_grad():
        full = decompose_image(backbone, images, keep_terms=True)
        acc = decompose_image(backbone, images)
    assert acc.terms is None and full.terms.shape == (2, 2, 1 + 15, 2, 32)
    torch.testing.assert_close(full.terms.sum((1, 3)), acc.tokens, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(full.terms.sum(2), acc.heads, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(full.mlps, acc.mlps)
    assert dec_sum(acc) == pytest.approx(1.0, abs=1e-5)  # unit-norm embedding


def dec_sum(dec) -> float:
    return float((dec.mlps.sum(1) + dec.heads.sum((1, 2))).norm(dim=-1).max())


def released_terms(clip: open_clip.model.CLIP, images: torch.Tensor) -> tuple:
    """A transcription of the released hooks on open_clip's weights: ``forward_per_head``'s
    ``out.post`` einsums (b n m h d), PRSLogger.compute_attentions_spatial (the [CLS] row, bias
    / (n h)), compute_mlps (ln_pre output and each c_proj output), then ``finalize``."""
    visual = clip.visual
    x = visual._embeds(images)  # conv1, [CLS], pos-embed, patch dropout, ln_pre
    attentions, mlps = [], [x[:, 0]]
    for block in visual.transformer.resblocks:
        attn = block.attn
        B, N, C = x.shape
        h = attn.num_heads
        y = block.ln_1(x)
        w_q, w_k, w_v = attn.in_proj_weight.reshape(3, h, C // h, C)
        b_q, b_k, b_v = attn.in_proj_bias.reshape(3, 1, h, 1, C // h)
        q = torch.einsum('bnc,hdc->bhnd', y, w_q) + b_q
        k = torch.einsum('bnc,hdc->bhnd', y, w_k) + b_k
        v = torch.einsum('bnc,hdc->bhnd', y, w_v) + b_v
        a = ((q / np.sqrt(q.shape[-1])) @ k.transpose(-2, -1)).softmax(-1)
        ext = torch.einsum('bhnm,bhmc->bnmhc', a, v)
        out = torch.einsum('bnmhc,dhc->bnmhd', ext, attn.out_proj.weight.reshape(C, h, -1))
        ret = out[:, 0]
        attentions.append(ret + attn.out_proj.bias / (ret.shape[1] * ret.shape[2]))
        x = x + out.sum(axis=(2, 3)) + attn.out_proj.bias
        mlp = block.mlp(block.ln_2(x))
        mlps.append(mlp[:, 0])
        x = x + mlp
    cls = x[:, 0]
    mean = cls.mean(-1, keepdim=True)
    std = torch.sqrt(((cls ** 2).mean(-1, keepdim=True) - mean ** 2) + visual.ln_post.eps)
    representation = visual.ln_post(cls) @ visual.proj
    attentions, mlps = torch.stack(attentions, 1), torch.stack(mlps, 1)  # (b l n h d), (b l+1 d)
    n_int = attentions.shape[1] + mlps.shape[1]
    norm_term = attentions.shape[2] * attentions.shape[3]
    ln = visual.ln_post
    post = (ln.weight * (attentions - mean[:, :, None, None, None] / (n_int * norm_term))
            / std[:, :, None, None, None] + ln.bias / (n_int * norm_term))
    post_mlp = ln.weight * (mlps - mean[:, :, None] / n_int) / std[:, :, None] + ln.bias / n_int
    norm = representation.norm(dim=-1)
    return (post @ visual.proj / norm[:, None, None, None, None],
            post_mlp @ visual.proj / norm[:, None, None])


def test_cls_terms_equal_the_released_hooks():
    clip, backbone = tiny()
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        attentions, mlps = released_terms(clip, images)
        dec = decompose_image(backbone, images, keep_terms=True)
    torch.testing.assert_close(dec.terms, attentions, atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(dec.mlps, mlps, atol=1e-6, rtol=1e-4)


def test_bad_input_is_refused():
    _, backbone = tiny()
    with pytest.raises(ValueError, match='not divisible'):
        decompose_image(backbone, torch.randn(1, 3, 64, 60))
    with pytest.raises(ValueError, match=r'expected images \(B, 3, H, W\)'):
        decompose_image(backbone, torch.randn(3, 64, 64))
    backbone.visual.pool_type = 'none'
    with pytest.raises(TypeError, match="pool_type='none'"):
        decompose_image(backbone, torch.randn(1, 3, 64, 64))
