"""Trident against a transcription of the released computation (YuHengsss/Trident@a93b346).

The reference below follows the released code line by line on tiny random models: the
windows of ``get_windowed_imgs``, DINO on the re-normalised windows, open_clip's modified
``VisionTransformer.forward`` (``custom_attn`` over the batch of windows, ``guidance_attn``'s
splice, ``get_sam_sim``), SAM's modified ``Attention.forward(return_attn=True)`` for
``last_attn``/``last_v`` and ``get_sam_feat``'s crop to the valid grid, and ``get_trident_seg``'s
cosine at SAM's grid resized to the original size. Images are H != W (windows are square, as
the release needs). SAM's input is built as our documented deviation does (the pipeline image,
not the file re-read from disk).
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_VIT, make_clip
from segment_anything.modeling.image_encoder import add_decomposed_rel_pos
from timm.models.vision_transformer import VisionTransformer

from denseclip.models.backbones.proxy import DINOProxy
from denseclip.models.dense.trident import (SmallSAMEncoder, TridentAttention,
                                            TridentSegmentor, sam_correlation, sam_input_size,
                                            splice_windows, trident_resize)
from denseclip.models.segmentors.base import CLIP_MEAN, CLIP_STD

CLASSES = ['cat', 'dog', 'sky', 'road']
SAM_MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
SAM_STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
MEAN255 = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
STD255 = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
IMNET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMNET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def tiny_dino(patch: int, crop: int, seed: int = 1) -> VisionTransformer:
    torch.manual_seed(seed)
    vit = VisionTransformer(img_size=crop, patch_size=patch, embed_dim=32, depth=1, num_heads=2,
                            num_classes=0).eval()
    with torch.no_grad():
        for p in vit.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return vit


def build(*, dino_patch=16, crop=48, stride=32, cos_fac=1.2, refine_neg_cos=True,
          sam_splits=1, sam_size=128):
    clip = make_clip(TINY_VIT)
    vit = tiny_dino(dino_patch, crop)
    sam = SmallSAMEncoder(seed=2, img_size=sam_size, embed_dim=32, depth=2, num_heads=2,
                          window_size=4).encoder
    model = TridentSegmentor(
        backbone=dict(type='CLIPViT', model=clip, pos_interp='scale_factor',
                      dense=dict(type='TridentAttention', beta=1.2, gamma=3.0,
                                 proxy=DINOProxy(vit, pos_interp='scale_factor'))),
        sam=sam, vocabulary=CLASSES, templates=['a {}.'], slide_crop=crop, slide_stride=stride,
        cos_fac=cos_fac, refine_neg_cos=refine_neg_cos, sam_splits=sam_splits).eval()
    return model, clip, vit, sam


# ------------------------------------------------------------------ transcription
def ref_pos_embed(pe, w, h, patch):
    """open_clip/transformer.py ``interpolate_pos_encoding`` (w: rows, h: columns)."""
    N = pe.shape[0] - 1
    w0, h0 = w // patch + 0.1, h // patch + 0.1
    dim = pe.shape[-1]
    p = F.interpolate(pe[1:].reshape(1, int(math.sqrt(N)), int(math.sqrt(N)), dim)
                      .permute(0, 3, 1, 2),
                      scale_factor=(w0 / math.sqrt(N), h0 / math.sqrt(N)), mode='bicubic')
    p = p.permute(0, 2, 3, 1).view(1, -1, dim)
    return torch.cat((pe[[0]].unsqueeze(0), p), dim=1)


def ref_clip(visual, x, ex_feats, beta, gamma, **kwargs):
    """The released ``VisionTransformer.forward`` with ``custom_attn`` and ``guidance_attn``."""
    B, nc, w, h = x.shape
    patch = visual.conv1.kernel_size[0]
    x = visual.conv1(x).reshape(B, visual.conv1.out_channels, -1).permute(0, 2, 1)
    x = torch.cat([visual.class_embedding.expand(B, 1, -1), x], dim=1)
    x = x + ref_pos_embed(visual.positional_embedding, w, h, patch)
    x = visual.ln_pre(x)
    token_size = h // patch, w // patch
    for blk in visual.transformer.resblocks[:-1]:
        x = blk(x)  # open_clip 3.3 blocks are batch-first
    x = x.permute(1, 0, 2)[1:]  # LND, class token removed
    blk = visual.transformer.resblocks[-1]
    # custom_attn
    attn_layer, xa = blk.attn, blk.ln_1(x)
    num_heads = attn_layer.num_heads
    _, bsz, embed_dim = xa.size()
    head_dim = embed_dim // num_heads
    q, k, v = F.linear(xa, attn_layer.in_proj_weight, attn_layer.in_proj_bias).chunk(3, dim=-1)
    v = v.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    Bf, C, H, W = ex_feats.shape
    q_k = F.normalize(ex_feats.flatten(2, 3), dim=1)
    similarity = torch.einsum('b c m, b c n -> b m n', q_k, q_k)
    similarity = (similarity - torch.mean(similarity) * beta) * gamma
    similarity[similarity < 0.0] = float('-inf')
    mask = similarity.unsqueeze(1).repeat(1, num_heads, 1, 1)
    mask = mask.reshape(bsz * num_heads, mask.shape[2], mask.shape[3])
    attn_weights = F.softmax(mask, dim=-1)
    v = v.reshape(bsz * num_heads, token_size[0], token_size[1], head_dim).permute(0, 3, 1, 2)
    v = F.interpolate(v, size=(H, W), mode='bilinear', align_corners=False)
    v = v.permute(0, 2, 3, 1).reshape(bsz * num_heads, H * W, head_dim)
    out = torch.bmm(attn_weights, v).transpose(0, 1).contiguous().view(-1, bsz, embed_dim)
    x = attn_layer.out_proj(out)
    # guidance_attn
    win_h, win_w = kwargs['win_sizes']
    dst_coords = torch.stack(kwargs['dst_coords'])
    sam_attn, sam_v = kwargs['sam_attn'], kwargs['sam_v']
    v = x.view(-1, bsz, num_heads, head_dim).permute(1, 2, 0, 3).contiguous()
    v = v.permute(2, 0, 1, 3).flatten(2)
    vfm = kwargs['vfm_token_size']
    v_img = v.view(vfm[0], vfm[1], bsz, embed_dim).permute(2, 3, 0, 1).contiguous()
    if v_img.shape[-1] % token_size[1] != 0:
        ratio = int(round(vfm[0] / token_size[0]))
        v_img = F.interpolate(v_img, size=(token_size[0] * ratio, token_size[1] * ratio),
                              mode='bilinear', align_corners=False)
    else:
        ratio = v_img.shape[-1] // token_size[1]
    dst_v = v.new_zeros(1, embed_dim, kwargs['dst_vh'] * ratio, kwargs['dst_vw'] * ratio)
    count = v.new_zeros(1, 1, kwargs['dst_vh'] * ratio, kwargs['dst_vw'] * ratio)
    for h_idx in range(win_h):
        for w_idx in range(win_w):
            c = dst_coords[h_idx * win_w + w_idx]
            dst_v[0, :, c[0] * ratio:c[2] * ratio, c[1] * ratio:c[3] * ratio] += \
                v_img[h_idx * win_w + w_idx]
            count[:, :, c[0] * ratio:c[2] * ratio, c[1] * ratio:c[3] * ratio] += 1
    dst_v = dst_v / count
    ref_neg, cos_fac = kwargs['refine_neg_cos'], kwargs['cos_fac']
    if isinstance(sam_v, list):
        outs = []
        halves = (dst_v[:, :, :, :dst_v.shape[3] // 2], dst_v[:, :, :, dst_v.shape[3] // 2:])
        for sv, sa, d in zip(sam_v, sam_attn, halves):
            aw = ref_sam_sim(sv, sa, cos_fac, num_heads, ref_neg)
            d = F.interpolate(d, size=(sv.shape[2], sv.shape[3]), mode='bilinear',
                              align_corners=False)
            d = d.reshape(1, num_heads, head_dim, -1).permute(0, 1, 3, 2)
            outs.append(torch.matmul(aw, d).view(1, num_heads, sv.shape[2], sv.shape[3],
                                                 head_dim))
        out = torch.cat(outs, dim=-2).flatten(2, 3).permute(2, 0, 1, 3).flatten(2)
    else:
        dst_v = F.interpolate(dst_v, size=(sam_v.shape[2], sam_v.shape[3]), mode='bilinear',
                              align_corners=False)
        aw = ref_sam_sim(sam_v, sam_attn, cos_fac, num_heads, ref_neg)
        dst_v = dst_v.view(1, num_heads, head_dim, -1).permute(0, 1, 3, 2)
        out = torch.matmul(aw, dst_v).permute(2, 0, 1, 3).flatten(2)
    x = out.permute(1, 0, 2)
    return visual.ln_post(x) @ visual.proj


def ref_sam_sim(sam_v, sam_attn, cos_fac, heads, refine_neg_cos=True):
    """open_clip/transformer.py ``get_sam_sim``."""
    sam_v = F.normalize(sam_v.flatten(2, 3), dim=-1)
    sam_sim = torch.einsum('b h m c, b h n c -> b h m n', sam_v, sam_v)
    sim_thresh = cos_fac * sam_sim.mean(dim=1, keepdim=True).mean(dim=-1, keepdim=True)
    if not refine_neg_cos:
        sim_thresh = torch.where(sim_thresh < 0.0, 0.6, sim_thresh)
    sim_thresh = torch.where(sim_thresh > 0.9, 0.9, sim_thresh)
    refined = torch.where(sam_sim > sim_thresh, sam_attn, torch.zeros_like(sam_attn))
    refined = refined.mean(dim=1)
    similarity = refined / refined.sum(dim=-1, keepdim=True)
    return similarity.unsqueeze(0).repeat(1, heads, 1, 1)


def ref_sam_feat(encoder, tmp_img_pixels):
    """SamPredictor.set_image (resize, normalise, pad), the modified encoder's ``last_attn``,
    ``last_v`` and ``get_sam_feat``'s crop; ``tmp_img_pixels`` (1, 3, h, w) RGB 0-255."""
    S, p = encoder.img_size, 16
    th, tw = sam_input_size(*tmp_img_pixels.shape[2:], S, p)  # get_preprocess_shape
    x = F.interpolate(tmp_img_pixels, size=(th, tw), mode='bilinear', align_corners=False,
                      antialias=True)
    x = F.pad((x - SAM_MEAN) / SAM_STD, (0, S - tw, 0, S - th))
    x = encoder.patch_embed(x) + encoder.pos_embed
    for blk in encoder.blocks[:-1]:
        x = blk(x)
    blk = encoder.blocks[-1]
    a = blk.attn
    xn = blk.norm1(x)
    B, H, W, _ = xn.shape
    qkv = a.qkv(xn).reshape(B, H * W, 3, a.num_heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.reshape(3, B * a.num_heads, H * W, -1).unbind(0)
    attn = (q * a.scale) @ k.transpose(-2, -1)
    attn = add_decomposed_rel_pos(attn, q, a.rel_pos_h, a.rel_pos_w, (H, W), (H, W))
    attn = attn.softmax(dim=-1)
    v = v.view(B, a.num_heads, H, W, -1)
    vh, vw = th // p, tw // p
    g = S // p
    sam_attn = attn.view(1, a.num_heads, g, g, g, g)[:, :, :vh, :vw, :vh, :vw]
    return sam_attn.flatten(2, 3).flatten(3, 4), v[:, :, :vh, :vw, :], vh, vw


def reference_logits(model, clip, vit, sam, image, ori_shape, sam_splits):
    """``Trident.get_trident_seg`` with the windows of ``get_windowed_imgs``."""
    crop, stride_ = model.slide_crop, model.slide_stride
    visual = clip.visual
    p = visual.conv1.kernel_size[0]
    img = image  # preprocess_image: H and W are multiples of 16 here
    h_img, w_img = img.shape[2:]
    h_grids = max(h_img - crop + stride_ - 1, 0) // stride_ + 1
    w_grids = max(w_img - crop + stride_ - 1, 0) // stride_ + 1
    crops, locs = [], []
    for hi in range(h_grids):
        for wi in range(w_grids):
            y1, x1 = hi * stride_, wi * stride_
            y2, x2 = min(y1 + crop, h_img), min(x1 + crop, w_img)
            y1, x1 = max(y2 - crop, 0), max(x2 - crop, 0)
            crops.append(img[:, :, y1:y2, x1:x2])
            locs.append(torch.tensor([y1 // p, x1 // p, y2 // p, x2 // p]))
    batch = torch.cat(crops)
    # self.norm(self.unnorm(...)): CLIP statistics -> ImageNet statistics
    pixels01 = (batch * STD255 + MEAN255) / 255
    feats = vit.forward_features((pixels01 - IMNET_MEAN) / IMNET_STD)  # normed tokens
    ps = vit.patch_embed.patch_size[0]
    vfm_h, vfm_w = crop // ps, crop // ps
    vfm = feats[:, 1:].reshape(len(crops), vfm_h, vfm_w, -1).permute(0, 3, 1, 2)
    # the SAM input: ori_shape rounded up to 16 (the release's cv2.resize of the file)
    h0, w0 = ori_shape
    tmp = (image * STD255 + MEAN255)
    tmp = F.interpolate(tmp, size=(math.ceil(h0 / 16) * 16, math.ceil(w0 / 16) * 16),
                        mode='bilinear', align_corners=False)
    if sam_splits == 2:
        tw = tmp.shape[-1]
        r1, r2 = ref_sam_feat(sam, tmp[..., :tw // 2]), ref_sam_feat(sam, tmp[..., tw // 2:])
        sam_attn, sam_v = [r1[0], r2[0]], [r1[1], r2[1]]
        vh, vw = r1[2], r1[3] * 2
    else:
        sam_attn, sam_v, vh, vw = ref_sam_feat(sam, tmp)
    out = ref_clip(visual, batch, vfm, 1.2, 3.0, paddings=None, dst_coords=locs,
                   win_sizes=(h_grids, w_grids), dst_vh=h_img // p, dst_vw=w_img // p,
                   sam_attn=sam_attn, sam_v=sam_v, cos_fac=model.cos_fac,
                   vfm_token_size=(vfm_h, vfm_w), refine_neg_cos=model.refine_neg_cos)
    out = out / out.norm(dim=-1, keepdim=True)
    logits = out @ model.text_for()[1].T
    logits = logits.permute(0, 2, 1).reshape(-1, logits.shape[-1], vh, vw)
    return F.interpolate(logits, size=ori_shape, mode='bilinear')


# ------------------------------------------------------------------ parity
@pytest.mark.parametrize('setting', [
    dict(),  # the harness: cos_fac 1.2, refine_neg_cos
    dict(cos_fac=0.0),  # VOC20
    dict(cos_fac=3.0, refine_neg_cos=False, sam_splits=2),  # Cityscapes
    dict(dino_patch=8),  # DINO's grid twice CLIP's (guidance_attn's ratio)
])
def test_matches_the_released_computation(setting):
    model, clip, vit, sam = build(**setting)
    g = torch.Generator().manual_seed(3)
    image = torch.randn(1, 3, 64, 112, generator=g)  # H != W: 2 x 3 windows of 48, stride 32
    ori_shape = (60, 104)
    with torch.no_grad():
        ref = reference_logits(model, clip, vit, sam, image, ori_shape,
                               setting.get('sam_splits', 1))
    ours = model.inference(image, ori_shape)
    assert ours.shape == ref.shape == (1, len(CLASSES), *ori_shape)
    torch.testing.assert_close(ours, ref, atol=2e-5, rtol=1e-4)
    # the windows do not share one mean cosine: the joint beta*mean is exercised
    proxy = model.backbone.dense
    crops = torch.cat([image[..., :48, :48], image[..., 16:, 64:]])
    f = proxy.proxy(proxy.proxy_images(crops)).flatten(2).transpose(1, 2)
    assert not torch.allclose(proxy.joint_beta(f)[0], proxy.joint_beta(f)[1])


def test_one_window_is_proxyclip():
    """With one window, the joint mean is the window's: TridentAttention = ProxyCLIPAttention."""
    from denseclip.models.dense import ProxyCLIPAttention
    model, *_ = build()
    dense = model.backbone.dense
    plain = ProxyCLIPAttention(proxy=dense.proxy, beta=1.2, gamma=3.0)
    x = torch.randn(1, 3, 48, 48)
    tokens, grid = model.backbone.trunk(x)
    a = dense.dense_forward(model.backbone.blocks, tokens, grid, x)[0]
    b = plain.dense_forward(model.backbone.blocks, tokens, grid, x)[0]
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


# ------------------------------------------------------------------ properties by hand
def test_splice_averages_overlaps():
    tokens = torch.stack([torch.full((4, 1), 1.0), torch.full((4, 1), 3.0)])  # 2 windows, 2x2
    out = splice_windows(tokens, (2, 2), [(0, 32, 0, 32), (0, 32, 16, 48)], (32, 48), 16)
    assert out[0, 0].tolist() == [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]


def test_geometry_by_hand():
    # VOC 500x375 at S = 448: 597 x 448 -> long side 608, short int(448·608/597) = 456 -> 464
    assert trident_resize(448, 597, 16, 336) == (464, 608)
    assert trident_resize(448, 608, 16, 336) == (448, 608)  # multiples: unchanged
    assert trident_resize(200, 250, 16, 336) == (336, 336)  # at least the crop
    # the original 375 x 500 -> 384 x 512 -> SAM 768 x 1024 (grid 48 x 64)
    assert sam_input_size(375, 500, 1024) == (768, 1024)
    assert sam_input_size(60, 104, 128) == (73, 128)  # 64 x 112 scaled by 8/7: 73.1 -> 73


def test_sam_weights_rows_and_threshold():
    sam = SmallSAMEncoder(seed=0, img_size=64, embed_dim=32, depth=2, num_heads=2,
                          window_size=2).encoder
    x = torch.randn(1, 3, 64, 64)
    w = sam_correlation(sam, x, (3, 4), cos_fac=1.2)
    assert w.shape == (12, 12)
    torch.testing.assert_close(w.sum(-1), torch.ones(12))
    assert (w.diagonal() > 0).all() and (w >= 0).all()
    # τ is capped at 0.9: cos_fac = 100 keeps only pairs with cosine > 0.9 in some head
    strict = sam_correlation(sam, x, (3, 4), cos_fac=100.0)
    assert (strict > 0).sum() <= (w > 0).sum() and (strict.diagonal() > 0).all()


# ------------------------------------------------------------------ errors
def test_bad_settings_raise_clear_errors():
    with pytest.raises(NotImplementedError, match='sam_refinement'):
        build_kwargs = dict(sam_refinement=True)
        TridentSegmentor(backbone=dict(), sam=None, **build_kwargs)
    model, clip, vit, sam = build()
    with pytest.raises(ValueError, match='multiples of the patch size'):
        TridentSegmentor(backbone=dict(type='CLIPViT', model=clip, dense=dict(
            type='TridentAttention', proxy=DINOProxy(vit))), sam=sam, slide_crop=40)
    with pytest.raises(TypeError, match='TridentAttention'):
        TridentSegmentor(backbone=dict(type='CLIPViT', model=clip), sam=sam, slide_crop=48,
                         slide_stride=32)
    with pytest.raises(ValueError, match='sam_splits'):
        TridentSegmentor(backbone=dict(), sam=sam, sam_splits=0)
    windowed = SmallSAMEncoder(img_size=64, embed_dim=32, depth=2, num_heads=2,
                               window_size=2).encoder
    windowed.blocks[-1].window_size = 2
    with pytest.raises(ValueError, match='window attention'):
        sam_correlation(windowed, torch.randn(1, 3, 64, 64), (2, 2), 1.2)
    with pytest.raises(NotImplementedError, match='whole images'):
        model.score_windows(torch.randn(1, 3, 48, 48), model.text_for()[1])


def test_predict_labels_at_the_original_size():
    model, *_ = build()
    from mmseg.structures import SegDataSample
    sample = SegDataSample(metainfo=dict(ori_shape=(40, 70), img_shape=(48, 80)))
    pred = model.predict(torch.randn(1, 3, 48, 80), [sample])[0].pred_sem_seg.data
    assert pred.shape == (1, 40, 70) and 0 <= pred.min() and pred.max() < len(CLASSES)


def test_harness_is_a_known_method():
    from denseclip.apis.dense_clip import known_methods, method_config
    assert 'trident' in known_methods()
    cfg = method_config('trident').model
    assert cfg.type == 'TridentSegmentor' and cfg.backbone.dense.type == 'TridentAttention'
    assert isinstance(TridentAttention, type)
