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

from denseclip.models.backbones.proxy import DINOProxy, build_sam
from denseclip.models.dense.trident import (SmallSAMEncoder, TridentAttention,
                                            TridentSegmentor, ViTCorrelationEncoder,
                                            attention_correlation,
                                            coarse_prompts, sam_correlation, sam_input_size,
                                            sam_refinement, splice_windows, trident_resize)
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


def reference_logits(model, clip, vit, sam, image, ori_shape, sam_splits, correlation=None):
    """``Trident.get_trident_seg`` with the windows of ``get_windowed_imgs``; ``correlation``:
    given (sam_attn, sam_v, vh, vw) instead of SAM's."""
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
    if correlation is not None:
        sam_attn, sam_v, vh, vw = correlation
    elif sam_splits == 2:
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
    assert not torch.allclose(proxy.window_beta(f)[0], proxy.window_beta(f)[1])


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


# ------------------------------------------------------------------ SAM prompt refinement
def tiny_sam(seed: int = 2, size: int = 128, width: int = 32):
    """A whole random segment-anything Sam (as demo/masks.py build_small_sam, smaller): the
    encoder is build()'s SmallSAMEncoder(seed=2), so the correlation path is unchanged."""
    from segment_anything.modeling import MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
    encoder = SmallSAMEncoder(seed=seed, img_size=size, embed_dim=width, depth=2, num_heads=2,
                              window_size=4).encoder
    g = size // 16
    torch.manual_seed(seed + 1)
    sam = Sam(image_encoder=encoder,
              prompt_encoder=PromptEncoder(embed_dim=width, image_embedding_size=(g, g),
                                           input_image_size=(size, size), mask_in_chans=8),
              mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer=TwoWayTransformer(
                  depth=2, embedding_dim=width, mlp_dim=2 * width, num_heads=2),
                  transformer_dim=width, iou_head_depth=3, iou_head_hidden_dim=width),
              pixel_mean=SAM_MEAN.flatten().tolist(), pixel_std=SAM_STD.flatten().tolist())
    return sam.eval()


def ref_split_connected_regions(segmentation, seg_logits, split_last=False, minimal_area=0,
                                coarse_thresh=0.0):
    """seg_utils/utils.py ``split_connected_regions``@a93b346."""
    import numpy as np
    from skimage import measure
    from torchvision.ops import masks_to_boxes
    C, H, W = segmentation.shape
    regions, boxes, clip_box_score, points = {}, {}, {}, {}
    for c in range(C):
        if not split_last and c == C - 1:
            continue
        regions[c], points[c], clip_box_score[c], boxes[c] = [], [], [], []
        class_mask = segmentation[c]
        class_logit = seg_logits[c]
        if class_logit.max() < coarse_thresh:
            continue
        labeled_mask = measure.label(class_mask, connectivity=2)
        num_regions = labeled_mask.max()
        for region_label in range(1, num_regions + 1):
            region_mask = (labeled_mask == region_label).astype(np.uint8)
            if region_mask.sum() < minimal_area:
                continue
            region_score = class_logit[region_mask.astype(bool)].mean()
            region_logit = class_logit * torch.tensor(region_mask).to(class_logit.device)
            max_pos = torch.argmax(region_logit)
            max_h, max_w = max_pos // class_logit.size(1), max_pos % class_logit.size(1)
            points[c].append(torch.tensor([max_w, max_h]))
            regions[c].append(region_mask)
            clip_box_score[c].append(region_score)
        if len(regions[c]):
            regions[c] = torch.from_numpy(np.stack(regions[c]))
        if regions[c] == []:
            boxes[c] = regions[c]
        else:
            boxes[c] = masks_to_boxes(regions[c])
    return regions, boxes, clip_box_score, points


def ref_map_refinement_coarse(refined_masks, refined_logits, coarse_boxes, seg_logits, img_shape):
    refined_whole_logits = torch.zeros([len(coarse_boxes), img_shape[0], img_shape[1]])
    cumsum = 0
    for i in range(len(coarse_boxes)):
        if coarse_boxes[i] == []:
            continue
        n = coarse_boxes[i].shape[0]
        tmp_cls_mask = refined_masks[cumsum:cumsum + n, 0].sum(dim=0).bool()
        tmp_cls_logit = (refined_logits[cumsum:cumsum + n, 0] * seg_logits[i]).max(dim=0)
        refined_whole_logits[i] = tmp_cls_logit.values * tmp_cls_mask
        cumsum += n
    refined_whole_masks = refined_whole_logits.argmax(0, keepdim=True)
    return refined_whole_masks, refined_whole_logits


def ref_map_failed_regions(refined_masks, refined_logits, failed_regions, seg_logits,
                           segmentation):
    failed_area = failed_regions.sum(dim=0, keepdim=True) != 0
    failed_logit = failed_area * seg_logits
    refined_logits = torch.where(failed_logit > refined_logits, failed_logit, refined_logits)
    refined_masks = torch.where(failed_logit.max(dim=0, keepdim=True)[0]
                                > refined_logits.max(dim=0, keepdim=True)[0],
                                segmentation, refined_masks)
    return refined_masks, refined_logits


def ref_sam_refinement(img_shape, segmentations, seg_logits, num_classes, predictor,
                       coarse_thresh=0.0, minimal_area=0, sam_mask_coff=0.005,
                       sam_iou_thresh=0.9):
    """seg_utils/utils.py ``sam_refinement``@a93b346 line by line; ``img`` is given by its
    shape, and the mask input's 256 (SAM's) is the tiny prompt encoder's mask size M. Also
    returns the IoU predictions of all prompts (to pick thresholds)."""
    M = predictor.model.prompt_encoder.mask_input_size[0]
    down_ratio = 2
    dh, dw = seg_logits.shape[-2] // down_ratio, seg_logits.shape[-1] // down_ratio
    segmentations_down = F.interpolate(segmentations.unsqueeze(0).float(), [dh, dw],
                                       mode='nearest').squeeze(0).long()  # .half() on CUDA
    seg_logits_down = F.interpolate(seg_logits.unsqueeze(0), [dh, dw], mode='bilinear',
                                    align_corners=False).squeeze(0)
    if coarse_thresh > 0:
        segmentations_down[seg_logits_down.max(0, keepdim=True)[0] < coarse_thresh] = num_classes
        cls_pred = F.one_hot(segmentations_down.squeeze(0).long(), num_classes=num_classes + 1
                             ).permute(2, 0, 1).float()
        split_last = False
    else:
        cls_pred = F.one_hot(segmentations_down.squeeze(0).long(), num_classes=num_classes
                             ).permute(2, 0, 1).float()
        split_last = True
    coarse_regions, coarse_boxes, _, coarse_points = ref_split_connected_regions(
        cls_pred.cpu().numpy(), seg_logits_down, split_last=split_last,
        minimal_area=minimal_area, coarse_thresh=coarse_thresh)
    combined_boxes, all_scores = [], []
    cls_wise_masks, cls_wise_scores, cls_wise_logits = [], [], []
    failed_regions = []
    predictor.features = predictor.features.float()
    for i in range(num_classes):
        tmp_r = coarse_regions.get(i, [])
        tmp_b = coarse_boxes.get(i, [])
        tmp_p = coarse_points.get(i, [])
        if tmp_r == []:
            continue
        cls_wise_r = seg_logits_down[i].unsqueeze(0)
        new_h, new_w = predictor.transform.get_preprocess_shape(img_shape[0], img_shape[1], M)
        cls_wise_r = F.interpolate(cls_wise_r.unsqueeze(0), [new_h, new_w], mode='bilinear',
                                   align_corners=False).squeeze(0)
        cls_wise_r = F.pad(cls_wise_r, (0, M - new_w, 0, M - new_h), mode='constant', value=0)
        cls_wise_r = torch.where(cls_wise_r > coarse_thresh, sam_mask_coff * cls_wise_r,
                                 torch.tensor(0.0).type_as(segmentations)).float()
        cls_wise_b = predictor.transform.apply_boxes_torch(tmp_b.type_as(segmentations),
                                                           [dh, dw]).float()
        cls_wise_p = torch.stack(tmp_p).type_as(segmentations)
        cls_wise_p = predictor.transform.apply_coords_torch(cls_wise_p, [dh, dw]).unsqueeze(1)
        cls_wise_mask, cls_wise_score, cls_wise_logit = predictor.predict_torch(
            point_coords=cls_wise_p.float(),
            point_labels=torch.ones([cls_wise_p.shape[0], 1]).type_as(segmentations).float(),
            boxes=cls_wise_b, mask_input=cls_wise_r, multimask_output=False)
        all_scores.append(cls_wise_score[:, 0])
        valid_masks = (cls_wise_score > sam_iou_thresh).squeeze(-1)
        if valid_masks.sum() != tmp_r.shape[0]:
            failed_regions.append(tmp_r[~valid_masks.cpu()])
        if valid_masks.sum() == 0:
            coarse_boxes[i] = []
            continue
        cls_wise_masks.append(cls_wise_mask[valid_masks])
        cls_wise_scores.append(cls_wise_score[valid_masks])
        cls_wise_logits.append(cls_wise_logit[valid_masks])
        tmp_b = tmp_b[valid_masks.cpu()]
        coarse_boxes[i] = coarse_boxes[i][valid_masks.cpu()]
        combined_boxes.append(tmp_b)
    all_scores = torch.cat(all_scores) if all_scores else torch.zeros(0)
    if len(combined_boxes) == 0:
        return segmentations, seg_logits, all_scores
    masks = torch.cat(cls_wise_masks, dim=0)
    logits = torch.cat(cls_wise_logits, dim=0)
    logits = predictor.model.postprocess_masks(logits, predictor.input_size,
                                               predictor.original_size)
    if logits.shape[-1] != img_shape[1] or logits.shape[-2] != img_shape[0]:
        logits = F.interpolate(logits, img_shape[:2], mode='bilinear', align_corners=False)
        masks = logits > predictor.model.mask_threshold
    refined_masks, refined_logits = ref_map_refinement_coarse(masks, logits.sigmoid(),
                                                              coarse_boxes, seg_logits,
                                                              img_shape)
    refined_masks = torch.where(refined_logits.sum(dim=0, keepdim=True) == 0, segmentations,
                                refined_masks)
    if len(failed_regions):
        failed_regions = torch.cat(failed_regions, dim=0)
        failed_regions = F.interpolate(failed_regions.unsqueeze(0).float(), img_shape[:2],
                                       mode='nearest').squeeze(0).type_as(segmentations)
        refined_masks, refined_logits = ref_map_failed_regions(
            refined_masks, refined_logits, failed_regions, seg_logits, segmentations)
    return refined_masks, refined_logits, all_scores


def synthetic_coarse_map(K=5, H=62, W=86, seed=0):
    """Labels and probabilities with several classes: blobs of classes 1-3 on class 0, a
    pixel-sized speck of class 2, and a region of class 4 whose probabilities stay below 0.3
    (near uniform). Returns labels (H, W) and probs (K, H, W)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.zeros(H, W, dtype=torch.long)
    labels[4:30, 6:40] = 1
    labels[36:58, 10:34] = 1  # a second region of class 1
    labels[8:40, 50:80] = 2
    labels[50:52, 60:62] = 2  # a speck: below minimal_area at half size
    labels[44:60, 44:56] = 3
    labels[10:20, 84:86] = 4
    logits = torch.randn(K, H, W, generator=g) * 0.3
    logits += 2.5 * F.one_hot(labels, K).permute(2, 0, 1).float()
    logits[:, labels == 4] = torch.randn(K, int((labels == 4).sum()), generator=g) * 0.02
    logits[4, labels == 4] += 0.1
    probs = logits.softmax(0)
    return probs.argmax(0), probs


def set_predictor(sam, seed=5, original=(64, 96)):
    from segment_anything import SamPredictor
    predictor = SamPredictor(sam)
    th, tw = sam_input_size(*original, sam.image_encoder.img_size)
    image = torch.rand(1, 3, th, tw, generator=torch.Generator().manual_seed(seed)) * 255
    predictor.set_torch_image(image, original)
    return predictor


@pytest.fixture(scope='module')
def refinement_case():
    sam = tiny_sam()
    predictor = set_predictor(sam)
    labels, probs = synthetic_coarse_map()
    settings = dict(coarse_thresh=0.3, minimal_area=6, sam_mask_coff=0.005)
    _, _, scores = ref_sam_refinement(probs.shape[1:], labels[None], probs, probs.shape[0],
                                      predictor, sam_iou_thresh=-1.0, **settings)
    return sam, predictor, labels, probs, settings, scores.sort().values


def ours_refine(sam, predictor, labels, probs, prompt_batch=64, **settings):
    return sam_refinement(sam, predictor.features, labels, probs, predictor.input_size,
                          predictor.original_size, prompt_batch=prompt_batch, **settings)


@pytest.mark.parametrize('where', ['all pass', 'some fail', 'all fail'])
def test_refinement_matches_the_released_code(refinement_case, where):
    sam, predictor, labels, probs, settings, scores = refinement_case
    assert len(scores) == 5  # classes 0, 2 and 3: one region each (the speck dropped), 1: two
    thresh = {'all pass': -1.0, 'some fail': float(scores[1:3].mean()), 'all fail': 2.0}[where]
    ref_labels, ref_probs, _ = ref_sam_refinement(probs.shape[1:], labels[None], probs,
                                                  probs.shape[0], predictor,
                                                  sam_iou_thresh=thresh, **settings)
    for batch in (64, 3):  # one decoder call, and calls across class boundaries
        out_labels, out_probs = ours_refine(sam, predictor, labels, probs, prompt_batch=batch,
                                            sam_iou_thresh=thresh, **settings)
        assert torch.equal(out_labels, ref_labels[0])
        torch.testing.assert_close(out_probs, ref_probs, atol=1e-6, rtol=1e-5)
    if where == 'all fail':  # no surviving mask: the input comes back
        assert out_labels is labels and out_probs is probs
    else:  # SAM's masks changed the map
        assert not torch.equal(out_labels, labels) or not torch.equal(out_probs, probs)
    if where == 'some fail':  # a failed region keeps max(p, refined) there
        assert (out_probs >= 0).all()


def test_refinement_by_hand(refinement_case):
    sam, predictor, labels, probs, settings, _ = refinement_case
    # classes whose regions are all below minimal_area are not prompted: nothing changes
    out_labels, out_probs = ours_refine(sam, predictor, labels, probs, sam_iou_thresh=-1.0,
                                        **dict(settings, minimal_area=10_000))
    assert out_labels is labels and out_probs is probs
    # half-size prompts (31 x 43): class 4's pixels are unconfident (max p < 0.3) -> never
    # prompted; class 2's speck (1 x 1 at half size) is below minimal_area 6
    labels_d = F.interpolate(labels[None, None].float(), size=(31, 43), mode='nearest')[0, 0]
    probs_d = F.interpolate(probs[None], size=(31, 43), mode='bilinear', align_corners=False)[0]
    classes, regions, boxes, points = coarse_prompts(labels_d.long(), probs_d, 0.3, 6)
    assert classes == [0, 1, 1, 2, 3]
    # class 1's first region: labels[4:30, 6:40] -> half-size rows 2..14, columns 3..19
    assert boxes[1].tolist() == [3.0, 2.0, 19.0, 14.0] and regions[1].sum() == 13 * 17
    assert boxes[3].tolist() == [25.0, 4.0, 39.0, 19.0]  # class 2's block, the speck dropped
    for c, r, (x, y) in zip(classes, regions, points):  # the region's most probable pixel
        assert r[y, x] and probs_d[c][y, x] == probs_d[c][r].max()
    # 8-connectivity: two blocks touching at a corner are one region; coarse_thresh 0 prompts
    # every class (no unconfident label)
    lab = torch.zeros(8, 8, dtype=torch.long)
    lab[0:3, 0:3] = 1
    lab[3:6, 3:6] = 1
    p = F.one_hot(lab, 2).permute(2, 0, 1).float()
    classes, regions, boxes, _ = coarse_prompts(lab, p, 0.0, 0)
    assert classes == [0, 1] and boxes[1].tolist() == [0.0, 0.0, 5.0, 5.0]


def reference_refined_predict(model, clip, vit, sam, image, ori_shape, sam_splits):
    """Released ``predict``: ``get_trident_seg`` -> ``postprocess_result`` (softmax(40 cos),
    argmax) -> ``sam_refinement`` with the predictor set on the whole image (the file rounded
    up to 16; Cityscapes sets it again after the halves), our SAM input as documented."""
    from segment_anything import SamPredictor
    logits = reference_logits(model, clip, vit, sam.image_encoder, image, ori_shape,
                              sam_splits)[0]
    probs = (logits * 40).softmax(0)
    labels = probs.argmax(0, keepdim=True)
    h0, w0 = ori_shape
    original = (math.ceil(h0 / 16) * 16, math.ceil(w0 / 16) * 16)
    tmp = F.interpolate(image * STD255 + MEAN255, size=original, mode='bilinear',
                        align_corners=False)
    tmp = F.interpolate(tmp, size=sam_input_size(h0, w0, sam.image_encoder.img_size),
                        mode='bilinear', align_corners=False, antialias=True)
    predictor = SamPredictor(sam)
    predictor.set_torch_image(tmp, original)
    out_labels, out_probs, _ = ref_sam_refinement(
        ori_shape, labels, probs, probs.shape[0], predictor, coarse_thresh=model.coarse_thresh,
        minimal_area=model.minimal_area, sam_mask_coff=model.sam_mask_coff,
        sam_iou_thresh=model.sam_iou_thresh)
    return probs, out_labels[0], out_probs


@pytest.mark.parametrize('sam_splits', [1, 2])
def test_segmentor_refines_as_released(sam_splits):
    from mmseg.structures import SegDataSample
    sam = tiny_sam()
    clip = make_clip(TINY_VIT)
    vit = tiny_dino(16, 48)
    model = TridentSegmentor(
        backbone=dict(type='CLIPViT', model=clip, pos_interp='scale_factor',
                      dense=dict(type='TridentAttention', beta=1.2, gamma=3.0,
                                 proxy=DINOProxy(vit, pos_interp='scale_factor'))),
        sam=sam, vocabulary=CLASSES, templates=['a {}.'], slide_crop=48, slide_stride=32,
        sam_splits=sam_splits, sam_refinement=True, coarse_thresh=0.05, minimal_area=4,
        sam_iou_thresh=-1.0).eval()  # random IoU predictions: let every mask pass
    assert model.sam is sam.image_encoder and model.sam_model is sam
    image = torch.randn(1, 3, 64, 112, generator=torch.Generator().manual_seed(3))
    ori_shape = (60, 104)
    with torch.no_grad():
        coarse, ref_labels, ref_probs = reference_refined_predict(model, clip, vit, sam, image,
                                                                  ori_shape, sam_splits)
    sample = SegDataSample(metainfo=dict(ori_shape=ori_shape, img_shape=(64, 112)))
    out = model.predict(image, [sample])[0]
    assert torch.equal(out.pred_sem_seg.data[0], ref_labels)
    torch.testing.assert_close(out.seg_logits.data, ref_probs, atol=2e-5, rtol=1e-4)
    assert not torch.allclose(ref_probs, coarse)  # the refinement did something here


def test_full_sam_is_built_from_the_same_checkpoint(tmp_path, monkeypatch):
    from segment_anything import sam_model_registry
    monkeypatch.setitem(sam_model_registry, 'vit_tiny', lambda checkpoint=None: tiny_sam(seed=7))
    path = tmp_path / 'sam_tiny.pth'
    torch.save(tiny_sam(seed=9).state_dict(), path)
    _, clip, vit, _ = build()
    model = TridentSegmentor(
        backbone=dict(type='CLIPViT', model=clip, dense=dict(type='TridentAttention',
                                                             proxy=DINOProxy(vit))),
        sam=dict(type='SAMProxy', model_type='vit_tiny', checkpoint=str(path)),
        vocabulary=CLASSES, templates=['a {}.'], slide_crop=48, slide_stride=32,
        sam_refinement=True)
    state = torch.load(path, weights_only=True)
    for name, value in model.sam_model.state_dict().items():
        assert torch.equal(value, state[name]), name
    assert model.sam is model.sam_model.image_encoder
    with pytest.raises(FileNotFoundError, match='Trident: weights file not found'):
        build_sam('vit_b', str(tmp_path / 'missing.pth'), 'Trident')
    with pytest.raises(KeyError, match="Trident: SAM model_type='vit_q'"):
        build_sam('vit_q', owner='Trident')


def test_refinement_needs_a_whole_sam():
    _, clip, vit, sam = build()
    kwargs = dict(backbone=dict(type='CLIPViT', model=clip, dense=dict(
        type='TridentAttention', proxy=DINOProxy(vit))), slide_crop=48, slide_stride=32,
        vocabulary=CLASSES, templates=['a {}.'], sam_refinement=True)
    with pytest.raises(ValueError, match='sam_refinement=True prompts SAM'):
        TridentSegmentor(sam=sam, **kwargs)  # an encoder only
    with pytest.raises(ValueError, match='sam_refinement=True prompts SAM'):
        TridentSegmentor(sam=ViTCorrelationEncoder(DINOProxy(tiny_dino(16, 48))), **kwargs)


# ------------------------------------------------------------------ any ViT as the correlation
def test_vit_correlation_is_the_blocks_own_attention():
    """attn and v of ViTCorrelationEncoder equal what timm's last block computes (hooks on
    its unfused attention and its qkv), patch tokens only."""
    vit = tiny_dino(16, 48, seed=4)
    enc = ViTCorrelationEncoder(DINOProxy(vit, pos_interp='scale_factor'), img_size=64)
    seen = {}
    last = vit.blocks[-1].attn
    last.fused_attn = False
    h1 = last.attn_drop.register_forward_hook(lambda m, i, o: seen.__setitem__('attn', o))
    h2 = last.qkv.register_forward_hook(lambda m, i, o: seen.__setitem__('qkv', o))
    x = torch.randn(1, 3, 48, 64)
    with torch.no_grad():
        enc.vit(x)  # DINOProxy.forward runs the blocks as timm does
        attn, v, grid = enc.last_attention(x)
    h1.remove()
    h2.remove()
    assert grid == (3, 4)
    torch.testing.assert_close(attn, seen['attn'][:, :, 1:, 1:])
    qkv = seen['qkv'].reshape(1, 13, 3, 2, -1)
    torch.testing.assert_close(v, qkv[:, 1:, 2].transpose(1, 2))


def test_attention_correlation_is_sam_correlation():
    """The generic W, fed SAM's last-block attention and values, is sam_correlation's."""
    from denseclip.models.dense.trident import sam_head_attention, sam_last_attention
    sam = SmallSAMEncoder(seed=0, img_size=64, embed_dim=32, depth=2, num_heads=2,
                          window_size=2).encoder
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        q, k, v = sam_last_attention(sam, x)
        attn = torch.stack([sam_head_attention(sam, q[h], k[h], (4, 4)) for h in range(2)])
        for cos_fac, neg in ((1.2, True), (3.0, False), (0.0, True)):
            torch.testing.assert_close(
                attention_correlation(attn, v, (4, 4), (3, 4), cos_fac, neg),
                sam_correlation(sam, x, (3, 4), cos_fac, neg))


def test_vit_stand_in_matches_the_released_aggregation():
    """The whole path with a ViTCorrelationEncoder: the released get_sam_sim and aggregation
    (ref_clip) fed that ViT's last-block attention and values on its input (sides rounded up to
    16, long side img_size, CLIP-normalised, padded to the patch), cropped to its valid grid."""
    clip = make_clip(TINY_VIT)
    vit = tiny_dino(16, 48)
    stand_in = tiny_dino(16, 48, seed=6)
    enc = ViTCorrelationEncoder(DINOProxy(stand_in, pos_interp='scale_factor',
                                          mean=CLIP_MEAN_01, std=CLIP_STD_01), img_size=96)
    model = TridentSegmentor(
        backbone=dict(type='CLIPViT', model=clip, pos_interp='scale_factor',
                      dense=dict(type='TridentAttention', beta=1.2, gamma=3.0,
                                 proxy=DINOProxy(vit, pos_interp='scale_factor'))),
        sam=enc, vocabulary=CLASSES, templates=['a {}.'], slide_crop=48, slide_stride=32,
        cos_fac=3.0).eval()
    image = torch.randn(1, 3, 64, 112, generator=torch.Generator().manual_seed(3))
    ori_shape = (60, 104)
    # the stand-in's input: 64 x 112 -> long side 96: 55 x 96, padded to 64 x 96; valid 3 x 6
    tmp = F.interpolate(image * STD255 + MEAN255, size=(64, 112), mode='bilinear',
                        align_corners=False)
    tmp = F.interpolate(tmp, size=(55, 96), mode='bilinear', align_corners=False,
                        antialias=True)
    tmp = F.pad((tmp / 255 - IMG_CLIP_MEAN) / IMG_CLIP_STD, (0, 0, 0, 9))
    with torch.no_grad():
        attn, v, grid = enc.last_attention(tmp)
        assert grid == (4, 6)
        a = attn.view(1, 2, 4, 6, 4, 6)[:, :, :3, :, :3].flatten(2, 3).flatten(3, 4)
        sv = v.view(1, 2, 4, 6, -1)[:, :, :3]
        ref = reference_logits(model, clip, vit, None, image, ori_shape, 1,
                               correlation=(a, sv, 3, 6))
    ours = model.inference(image, ori_shape)
    torch.testing.assert_close(ours, ref, atol=2e-5, rtol=1e-4)


CLIP_MEAN_01 = tuple(m / 255 for m in CLIP_MEAN)
CLIP_STD_01 = tuple(s / 255 for s in CLIP_STD)
IMG_CLIP_MEAN = torch.tensor(CLIP_MEAN_01).view(1, 3, 1, 1)
IMG_CLIP_STD = torch.tensor(CLIP_STD_01).view(1, 3, 1, 1)
