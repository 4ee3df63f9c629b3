"""ResCLIP against a transcription of the released code (yvhangyang/ResCLIP@0e085f7
clip/model.py: the forward's trunk with attention maps, RCS, create_logit_temp,
create_patch_matrix, check_path, generate_attention_sfr, custom_attn's 'resclip', 'sclip' and
'clearclip' strategies), on NACLIP (the paper) and composed with SCLIP and ClearCLIP.

Two deviations of ours are transcribed as ours: PAMR is denseclip's (checked against the
released PAMR in test_refiners), and the feedback mask is not cast to float16 (the released
code casts it because its whole model runs in float16 on CUDA)."""
from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_VIT, make_clip

from denseclip.models.backbones import CLIPViT
from denseclip.models.dense import (ResCLIPAttention, SemanticFeedbackRefiner, feedback_mask,
                                    patch_labels, straight_paths)
from denseclip.models.refiners.pamr import pamr

TINY4 = copy.deepcopy(TINY_VIT)
TINY4['vision_cfg'].update(layers=4)
RCS = (1, 3)  # blocks 1 and 2 of the 4-block tower (ViT-B: 5..8 of 12)
SETTINGS = dict(temp_thd=0.5, logit_scale=40.0, rcs_weights=(2.0, 0.3), sfr_weights=(2.2, 0.7))


# ---------------------------------------------------------------- the released code, per image
def released_gaussian_window(dim1, dim2, std):
    constant = 1 / (std * math.sqrt(2))
    ks = []
    for dim in [dim1, dim2]:
        start = -(dim - 1) / 2.0
        ks.append(torch.linspace(start * constant, (start + (dim - 1)) * constant, dim))
    return torch.exp(-(torch.stack(torch.meshgrid(*ks, indexing='ij')) ** 2).sum(0))


def released_addition(dim1, dim2, window):
    m = torch.einsum('ij,kl->ijkl', torch.eye(dim1), torch.eye(dim2))
    m = m.permute((0, 3, 1, 2)).contiguous()
    out = F.conv2d(m.view(-1, dim1, dim2).unsqueeze(1), window.unsqueeze(0).unsqueeze(1),
                   padding='same').squeeze(1)
    out = out.view(dim1 * dim2, dim1 * dim2)
    v = torch.vstack([torch.zeros((1, dim1 * dim2)), out])
    return torch.hstack([torch.zeros((dim1 * dim2 + 1, 1)), v])


def released_custom_attn(attn_layer, x, n_patches, strategy, std, attn_rcs=None, attn_sfr=None,
                         rcs_w=None, sfr_w=None, use_custom_attn=True, with_attn=False):
    num_heads = attn_layer.num_heads
    num_tokens, bsz, embed_dim = x.size()
    head_dim = embed_dim // num_heads
    scale = head_dim ** -0.5
    q, k, v = F.linear(x, attn_layer.in_proj_weight, attn_layer.in_proj_bias).chunk(3, dim=-1)
    q = q.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    k = k.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    v = v.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    if use_custom_attn:
        window = released_gaussian_window(*[s * 2 - 1 for s in n_patches], std=std)
        omega = released_addition(*n_patches, window).unsqueeze(0)
        if attn_sfr is not None:
            attn_sfr = attn_sfr / torch.max(attn_sfr)  # (the release casts to float16 here)
        if strategy == 'resclip':
            attn_weights = torch.bmm(k, k.transpose(1, 2)) * scale
            if attn_sfr is not None:
                attn_weights = sfr_w[0] * ((1 - sfr_w[1]) * attn_weights + sfr_w[1] * attn_sfr)
            attn_weights += omega
            attn_weights = F.softmax(attn_weights, dim=-1)
        elif strategy == 'sclip':
            q_attn = torch.bmm(q, q.transpose(1, 2)) * scale
            k_attn = torch.bmm(k, k.transpose(1, 2)) * scale
            if attn_sfr is not None:
                q_attn = sfr_w[0] * ((1 - sfr_w[1]) * q_attn + sfr_w[1] * attn_sfr)
                k_attn = sfr_w[0] * ((1 - sfr_w[1]) * k_attn + sfr_w[1] * attn_sfr)
            attn_weights = F.softmax(q_attn, dim=-1) + F.softmax(k_attn, dim=-1)
        elif strategy == 'clearclip':
            attn_weights = torch.bmm(q, q.transpose(1, 2)) * scale
            if attn_sfr is not None:
                attn_weights = sfr_w[0] * ((1 - sfr_w[1]) * attn_weights + sfr_w[1] * attn_sfr)
            attn_weights = F.softmax(attn_weights, dim=-1)
        if attn_rcs is not None:
            attn_weights = rcs_w[0] * ((1 - rcs_w[1]) * attn_weights + rcs_w[1] * attn_rcs)
    else:
        attn_weights = F.softmax(torch.bmm(q * scale, k.transpose(1, 2)), dim=-1)
    attn_output = torch.bmm(attn_weights, v)
    attn_output = attn_output.transpose(0, 1).contiguous().view(-1, bsz, embed_dim)
    attn_output = attn_layer.out_proj(attn_output)
    if with_attn:
        return attn_output, attn_weights
    return attn_output


def released_check_path(start_coords, end_coords, patch_logit_temp):
    steps = torch.max(torch.abs(end_coords - start_coords), dim=1)[0]
    max_steps = steps.max().item()
    t = torch.linspace(0, 1, steps=max_steps + 1).unsqueeze(1).unsqueeze(0)
    current_coords = start_coords.unsqueeze(1) * (1 - t) + end_coords.unsqueeze(1) * t
    current_coords = current_coords.round().long()
    valid_steps = torch.arange(max_steps + 1).unsqueeze(0) <= steps.unsqueeze(1)
    start_values = patch_logit_temp[start_coords[:, 0], start_coords[:, 1]].unsqueeze(1)
    current_values = patch_logit_temp[current_coords[:, :, 0], current_coords[:, :, 1]]
    path_valid = (current_values == start_values) | ~valid_steps
    return path_valid.all(dim=1)


def released_attention_sfr(patch_logit_temp, n_patches, gaussian_std):
    h, w = n_patches
    total = h * w
    attention_sfr = torch.zeros((total + 1, total + 1))
    idx = torch.arange(total)
    i, j = torch.meshgrid(idx, idx, indexing='ij')
    i_w, i_h = torch.div(i, w, rounding_mode='floor'), i % w
    j_w, j_h = torch.div(j, w, rounding_mode='floor'), j % w
    mask = (patch_logit_temp[i_w, i_h] == patch_logit_temp[j_w, j_h])
    attention_sfr[1:, 1:] = mask.float()
    attention_sfr.diagonal().fill_(1)
    attention_sfr[0, :] = 0
    attention_sfr[:, 0] = 0
    non_cls = attention_sfr[1:, 1:]
    start = torch.stack((i_w, i_h), dim=-1).view(-1, 2)
    end = torch.stack((j_w, j_h), dim=-1).view(-1, 2)
    valid = released_check_path(start, end, patch_logit_temp).view(total, total)
    steps = torch.max(torch.abs(end - start), dim=1)[0]
    decay = torch.exp(-steps.view(total, total) / steps.max().item())
    non_cls = torch.where(valid, non_cls, non_cls * decay)
    kernel_size = min(total, int(6 * gaussian_std + 1))
    kernel_size = kernel_size if kernel_size % 2 == 1 else kernel_size + 1
    x = torch.arange(kernel_size) - kernel_size // 2
    kernel = torch.exp(-(x ** 2) / (2 * gaussian_std ** 2))
    kernel = kernel / kernel.sum()
    blurred = F.conv1d(non_cls.unsqueeze(1), kernel.view(1, 1, -1),
                       padding=kernel_size // 2).squeeze(1)
    blurred = F.relu(blurred)
    attention_sfr[1:, 1:] = blurred / (blurred.sum(dim=1, keepdim=True) + 1e-8)
    return attention_sfr.unsqueeze(0)


def released_logits(model: CLIPViT, img, query, strategy, std, use_rcs=True, use_sfr=True):
    """VisionTransformer.forward(return_all=True) of one window and forward_feature's patch
    cosines, as released, on our embedding (conv1, pos-embed, ln_pre: shared code)."""
    s = SETTINGS
    x = model.embed(img)[0].permute(1, 0, 2)  # LND
    n_patches = (img.shape[-2] // 16, img.shape[-1] // 16)
    blocks = model.blocks
    attn_map = []
    for blk in blocks[:-1]:
        x_i, attn_i = released_custom_attn(blk.attn, blk.ln_1(x), n_patches, strategy, std,
                                           use_custom_attn=False, with_attn=True)
        x = x + x_i
        x = x + blk.mlp(blk.ln_2(x))
        attn_map.append(attn_i)
    rcs = torch.stack([attn_map[i] for i in range(*RCS)]).mean(0) if use_rcs else None
    blk = blocks[-1]
    visual = model.visual

    def last_block(sfr):
        y = released_custom_attn(blk.attn, blk.ln_1(x), n_patches, strategy, std, rcs, sfr,
                                 s['rcs_weights'], s['sfr_weights'])
        if strategy == 'sclip':  # arch='w_resi'
            y = x + y
            y = y + blk.mlp(blk.ln_2(y))
        feats = (visual.ln_post(y.permute(1, 0, 2)) @ visual.proj)[:, 1:]
        feats = feats / feats.norm(dim=-1, keepdim=True)
        return (feats @ query.T).permute(0, 2, 1).reshape(-1, query.shape[0], *n_patches)

    sfr = None
    if use_sfr:
        temp = F.interpolate(last_block(None), size=img.shape[-2:], mode='bilinear',
                             align_corners=False)
        temp = torch.softmax(pamr(img, temp, (8, 16), 10)[0] * s['logit_scale'], dim=0)
        seg_pred = temp.argmax(0, keepdim=True)
        seg_pred[temp.max(0, keepdim=True)[0] < s['temp_thd']] = 0
        patches = seg_pred.squeeze(0).unfold(0, 16, 16).unfold(1, 16, 16)
        patch_matrix = torch.mode(patches.reshape(*n_patches, -1), dim=-1)[0]
        sfr = released_attention_sfr(patch_matrix, n_patches, std)
    return last_block(sfr)


# ---------------------------------------------------------------- ours
ATTENTIONS = {'resclip': dict(type='NACLIPAttention', sigma=5.0),
              'sclip': dict(type='SCLIPAttention'),
              'clearclip': dict(type='ClearCLIPAttention')}


def build(strategy, std=5.0, rcs=True):
    attention = dict(ATTENTIONS[strategy])
    if strategy == 'resclip':
        attention['sigma'] = std  # the release's one gaussian_std: Ω's σ and the SFR blur's
    dense = dict(type='ResCLIPAttention', attention=attention, rcs_blocks=RCS,
                 rcs_weights=SETTINGS['rcs_weights'] if rcs else None,
                 sfr_weights=SETTINGS['sfr_weights'])
    model = CLIPViT(model=make_clip(TINY4), dense=dense, pos_interp='scale_factor').eval()
    refiner = SemanticFeedbackRefiner(temp_thd=SETTINGS['temp_thd'], gaussian_std=std,
                                      logit_scale=SETTINGS['logit_scale'])
    return model, refiner


def ours(model, refiner, images, query):
    refiner.set_classifier(SimpleNamespace(embeddings=query))
    dense = model.forward_dense(images)
    first = torch.einsum('behw,qe->bqhw', F.normalize(dense.feats, dim=1), query)
    return first, refiner(first, dense, model)


@pytest.fixture(scope='module')
def inputs():
    g = torch.Generator().manual_seed(0)
    images = torch.randn(2, 3, 64, 96, generator=g)  # H != W: a 4 x 6 grid
    query = F.normalize(torch.randn(5, TINY4['embed_dim'], generator=g), dim=-1)
    return images, query


@pytest.mark.parametrize('strategy,std', [('resclip', 5.0), ('resclip', 1.0), ('sclip', 5.0),
                                          ('clearclip', 5.0)])
def test_window_logits_equal_the_released_forward(inputs, strategy, std):
    """NACLIP (the paper's 'resclip' strategy), and RCS + SFR composed with SCLIP (with its
    residual and FFN, 'w_resi') and ClearCLIP: the second pass's cosines and the first pass's
    (RCS only) equal the release's, image by image, on a non-square window."""
    images, query = inputs
    model, refiner = build(strategy, std)
    with torch.no_grad():
        first, final = ours(model, refiner, images, query)
        for b in range(2):
            img = images[b:b + 1]
            torch.testing.assert_close(final[b:b + 1], released_logits(model, img, query,
                                                                       strategy, std),
                                       atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(first[b:b + 1], released_logits(
                model, img, query, strategy, std, use_sfr=False), atol=1e-5, rtol=1e-4)
        # the feedback is not trivial: several labels, and paths that leave them
        labels = refiner.first_pass_labels(first, images, 16)
        assert labels.unique().numel() >= 2 and not straight_paths(labels)[0].all()


@pytest.mark.parametrize('strategy', ['resclip', 'sclip', 'clearclip'])
def test_rcs_and_sfr_change_the_wrapped_attention(inputs, strategy):
    """Each term changes the result: plain attention != +RCS != +RCS+SFR; without RCS, the
    wrapper's first pass is the wrapped attention's own fused path."""
    images, query = inputs
    plain = CLIPViT(model=make_clip(TINY4), dense=ATTENTIONS[strategy],
                    pos_interp='scale_factor').eval()
    with torch.no_grad():
        base = torch.einsum('behw,qe->bqhw', F.normalize(plain.encode_dense(images), dim=1),
                            query)
        no_rcs = ours(*build(strategy, rcs=False), images, query)
        rcs = ours(*build(strategy), images, query)
    torch.testing.assert_close(no_rcs[0], base, atol=1e-5, rtol=1e-4)
    for a, b in ((base, rcs[0]), (rcs[0], rcs[1]), (no_rcs[1], rcs[1])):
        assert (a - b).abs().max() > 1e-3


def test_patch_labels_by_hand():
    """AdaThr then the mode of each 2 x 2 patch: pixels under 0.5 become query 0."""
    probs = torch.zeros(1, 3, 2, 4)
    probs[0, 1, :, :2] = 0.9  # left patch: query 1 everywhere
    probs[0, 2, :, 2:] = 0.4  # right patch: query 2, under the threshold -> 0 ...
    probs[0, 2, 0, 2] = 0.8  # ... but for one pixel: one 2, three 0s
    assert patch_labels(probs, 2, 0.5).tolist() == [[[1, 0]]]
    probs[0, 2, 1, 2:] = 0.7  # three 2s, one 0
    assert patch_labels(probs, 2, 0.5).tolist() == [[[1, 2]]]
    assert patch_labels(probs, 2, 0.95).tolist() == [[[0, 0]]]


def test_straight_paths_by_hand():
    """A 3 x 3 grid, a ring of label 1 around a centre of label 2: from the corner (0, 0) the
    path to (2, 2) crosses the centre (invalid); to (0, 2) it stays on the ring (valid). As
    released, only the first d/M of a shorter path is checked: (0, 0) -> (1, 1) has d = 1 of
    M = 2, its second sample (t = 1/2 -> (0.5, 0.5) rounds to (0, 0)) stays on the ring."""
    labels = torch.ones(1, 3, 3, dtype=torch.long)
    labels[0, 1, 1] = 2
    valid, steps = straight_paths(labels)
    pair = lambda a, b: valid[0, a[0] * 3 + a[1], b[0] * 3 + b[1]].item()  # noqa: E731
    assert not pair((0, 0), (2, 2)) and pair((0, 0), (0, 2)) and pair((0, 0), (1, 1))
    assert not pair((1, 1), (0, 0))  # the centre's own label leaves at once
    assert steps[0, 8] == 2 and steps[0, 4] == 1 and steps[1, 3] == 1


def test_feedback_mask_properties():
    labels = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 1]]])
    mask = feedback_mask(labels, gaussian_std=5.0, delete_same_entity=False)
    assert mask.shape == (1, 9, 9) and mask.max() == 1
    assert (mask[0, 0] == 0).all() and (mask[0, :, 0] == 0).all()  # [CLS] row and column
    # without decay or a narrow blur, a row's mass sits on its own label's columns
    sharp = feedback_mask(labels, gaussian_std=0.1, delete_same_entity=False)[0, 1:, 1:]
    same = (labels.flatten()[:, None] == labels.flatten()[None]).float()
    torch.testing.assert_close(sharp, same / same.max())


def test_wrapped_attention_must_expose_softmax_terms():
    with pytest.raises(TypeError, match='MaskCLIPAttention does not expose'):
        ResCLIPAttention(attention=dict(type='MaskCLIPAttention'))
    model = CLIPViT(model=make_clip(TINY_VIT),  # 2 blocks: RCS's (5, 9) does not fit
                    dense=dict(type='ResCLIPAttention', attention=ATTENTIONS['resclip']))
    with pytest.raises(ValueError, match=r'rcs_blocks=\(5, 9\) reaches block 8; this tower has '
                                         r'blocks 0\.\.0'):
        model.encode_dense(torch.randn(1, 3, 64, 64))
    refiner = SemanticFeedbackRefiner(temp_thd=0.5)
    plain = CLIPViT(model=make_clip(TINY_VIT), dense=ATTENTIONS['sclip'])
    dense = plain.forward_dense(torch.randn(1, 3, 64, 64))
    with pytest.raises(TypeError, match='needs the backbone dense attention to be '
                                        'ResCLIPAttention, got SCLIPAttention'):
        refiner(torch.zeros(1, 2, 4, 4), dense, plain)
