"""Reference of the *released* MAFT+ (jiaosiyu1999/MAFT-Plus@fd12806) for tests.

``ReleasedMAFTPlus`` has ``MAFT_Plus``'s parameters under their names (so its ``state_dict()``
is in the released checkpoint's layout) at tiny sizes, and an inference forward transcribed
from the release: ``clip.py`` ``extract_features_convnext`` / ``visual_prediction_forward``,
Mask2Former's detectron2 ``MSDeformAttnPixelDecoder.forward_features`` (the deformable
attention through ``ms_deform_attn_core_pytorch``, which is mmcv's
``multi_scale_deformable_attn_pytorch``), FC-CLIP's ``MultiScaleMaskedTransformerDecoder``,
``ContentDependentTransfer`` and ``MAFT_Plus.forward``'s eval branch with
``semantic_inference``. Written from the release, not from denseclip's modules.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch
from torch import Tensor, nn


def sine_pos(x: Tensor, num_pos_feats: int) -> Tensor:
    """Mask2Former ``PositionEmbeddingSine(num_pos_feats, normalize=True)`` with no mask."""
    not_mask = torch.ones((x.shape[0], *x.shape[-2:]), dtype=torch.bool)
    y_embed = not_mask.cumsum(1, dtype=torch.float32)
    x_embed = not_mask.cumsum(2, dtype=torch.float32)
    y_embed = y_embed / (y_embed[:, -1:, :] + 1e-6) * 2 * math.pi
    x_embed = x_embed / (x_embed[:, :, -1:] + 1e-6) * 2 * math.pi
    dim_t = torch.arange(num_pos_feats, dtype=torch.float32)
    dim_t = 10000 ** (2 * (dim_t // 2) / num_pos_feats)
    pos_x = x_embed[:, :, :, None] / dim_t
    pos_y = y_embed[:, :, :, None] / dim_t
    pos_x = torch.stack((pos_x[:, :, :, 0::2].sin(), pos_x[:, :, :, 1::2].cos()), dim=4).flatten(3)
    pos_y = torch.stack((pos_y[:, :, :, 0::2].sin(), pos_y[:, :, :, 1::2].cos()), dim=4).flatten(3)
    return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)


class Conv2dNorm(nn.Conv2d):
    """detectron2 ``Conv2d`` with ``norm`` (and ``activation``) as attributes."""

    def __init__(self, cin: int, cout: int, k: int, norm: nn.Module, relu: bool) -> None:
        super().__init__(cin, cout, k, padding=k // 2, bias=False)
        self.norm = norm
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(super().forward(x))
        return F.relu(x) if self.relu else x


class MSDeformAttn(nn.Module):
    def __init__(self, d: int, levels: int, heads: int, points: int) -> None:
        super().__init__()
        self.d, self.levels, self.heads, self.points = d, levels, heads, points
        self.sampling_offsets = nn.Linear(d, heads * levels * points * 2)
        self.attention_weights = nn.Linear(d, heads * levels * points)
        self.value_proj = nn.Linear(d, d)
        self.output_proj = nn.Linear(d, d)

    def forward(self, query, reference_points, flat, shapes):
        N, Lq, _ = query.shape
        value = self.value_proj(flat).view(N, flat.shape[1], self.heads, self.d // self.heads)
        offsets = self.sampling_offsets(query).view(N, Lq, self.heads, self.levels,
                                                    self.points, 2)
        weights = F.softmax(self.attention_weights(query).view(
            N, Lq, self.heads, self.levels * self.points), -1).view(
            N, Lq, self.heads, self.levels, self.points)
        normalizer = torch.stack([shapes[..., 1], shapes[..., 0]], -1)
        locations = reference_points[:, :, None, :, None, :] + \
            offsets / normalizer[None, None, None, :, None, :]
        out = multi_scale_deformable_attn_pytorch(value, shapes, locations, weights)
        return self.output_proj(out)


class EncoderLayer(nn.Module):
    def __init__(self, d: int, ffn: int, levels: int, heads: int, points: int) -> None:
        super().__init__()
        self.self_attn = MSDeformAttn(d, levels, heads, points)
        self.norm1 = nn.LayerNorm(d)
        self.linear1 = nn.Linear(d, ffn)
        self.linear2 = nn.Linear(ffn, d)
        self.norm2 = nn.LayerNorm(d)

    def forward(self, src, pos, ref, shapes):
        src = self.norm1(src + self.self_attn(src + pos, ref, src, shapes))
        return self.norm2(src + self.linear2(F.relu(self.linear1(src))))


class Encoder(nn.Module):
    def __init__(self, num_layers: int, **kw) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(**kw) for _ in range(num_layers))


class EncoderOnly(nn.Module):
    def __init__(self, d: int, heads: int, num_layers: int, levels: int) -> None:
        super().__init__()
        self.encoder = Encoder(num_layers, d=d, ffn=1024, levels=levels, heads=heads, points=4)
        self.level_embed = nn.Parameter(torch.randn(levels, d))

    def forward(self, srcs, pos_embeds):
        flat, lvl_pos, shapes = [], [], []
        for lvl, (src, pos) in enumerate(zip(srcs, pos_embeds)):
            shapes.append(src.shape[-2:])
            flat.append(src.flatten(2).transpose(1, 2))
            lvl_pos.append(pos.flatten(2).transpose(1, 2) + self.level_embed[lvl].view(1, 1, -1))
        flat, lvl_pos = torch.cat(flat, 1), torch.cat(lvl_pos, 1)
        shapes = torch.as_tensor(shapes, dtype=torch.long)
        refs = []
        for H_, W_ in shapes.tolist():
            ref_y, ref_x = torch.meshgrid(torch.linspace(0.5, H_ - 0.5, H_),
                                          torch.linspace(0.5, W_ - 0.5, W_), indexing='ij')
            refs.append(torch.stack((ref_x.reshape(-1) / W_, ref_y.reshape(-1) / H_), -1))
        ref = torch.cat(refs, 0)[None, :, None].expand(flat.shape[0], -1, len(srcs), -1)
        out = flat
        for layer in self.encoder.layers:
            out = layer(out, lvl_pos, ref, shapes)
        return out, shapes


class PixelDecoder(nn.Module):
    """Mask2Former's ``MSDeformAttnPixelDecoder`` on res2..res5, res3..res5 deformable."""

    def __init__(self, channels: list[int], conv_dim: int, heads: int, enc_layers: int) -> None:
        super().__init__()
        self.conv_dim = conv_dim
        self.input_proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, conv_dim, 1), nn.GroupNorm(32, conv_dim))
            for c in channels[1:][::-1])
        self.transformer = EncoderOnly(conv_dim, heads, enc_layers, 3)
        self.mask_features = nn.Conv2d(conv_dim, conv_dim, 1)
        self.adapter_1 = Conv2dNorm(channels[0], conv_dim, 1, nn.GroupNorm(32, conv_dim), False)
        self.layer_1 = Conv2dNorm(conv_dim, conv_dim, 3, nn.GroupNorm(32, conv_dim), True)

    def forward_features(self, feats: list[Tensor]):
        srcs = [proj(x.float()) for proj, x in zip(self.input_proj, feats[1:][::-1])]
        pos = [sine_pos(x, self.conv_dim // 2) for x in feats[1:][::-1]]
        y, shapes = self.transformer(srcs, pos)
        sizes = [int(h * w) for h, w in shapes.tolist()]
        out = [z.transpose(1, 2).reshape(y.shape[0], -1, h, w)
               for z, (h, w) in zip(torch.split(y, sizes, dim=1), shapes.tolist())]
        cur = self.adapter_1(feats[0].float())
        out.append(self.layer_1(cur + F.interpolate(out[-1], size=cur.shape[-2:],
                                                    mode='bilinear', align_corners=False)))
        return self.mask_features(out[-1]), out[0], out[:3]


class MLP(nn.Module):
    def __init__(self, i: int, h: int, o: int, n: int) -> None:
        super().__init__()
        dims = [i] + [h] * (n - 1)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, [h] * (n - 1) + [o]))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < len(self.layers) - 1 else layer(x)
        return x


class AttnLayer(nn.Module):
    def __init__(self, d: int, heads: int, name: str) -> None:
        super().__init__()
        setattr(self, name, nn.MultiheadAttention(d, heads))
        self.norm = nn.LayerNorm(d)


class FFNLayer(nn.Module):
    def __init__(self, d: int, ffn: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(d, ffn)
        self.linear2 = nn.Linear(ffn, d)
        self.norm = nn.LayerNorm(d)

    def forward(self, x):
        return self.norm(x + self.linear2(F.relu(self.linear1(x))))


def mask_pooling(x: Tensor, mask: Tensor) -> Tensor:
    """FC-CLIP ``MaskPooling``."""
    if x.shape[-2:] != mask.shape[-2:]:
        mask = F.interpolate(mask, size=x.shape[-2:], mode='bilinear', align_corners=False)
    mask = (mask.detach() > 0).to(mask.dtype)
    denorm = mask.sum(dim=(-1, -2), keepdim=True) + 1e-8
    return torch.einsum('bchw,bqhw->bqc', x, mask / denorm)


def get_classification_logits(x, text_classifier, logit_scale, num_templates):
    x = F.normalize(x, dim=-1)
    logit_scale = torch.clamp(logit_scale.exp(), max=100)
    if text_classifier.ndim == 2:
        pred = logit_scale * x @ text_classifier.T
    else:
        pred = logit_scale * x @ text_classifier.permute(0, 2, 1)
    final, cur = [], 0
    for n in num_templates:
        final.append(pred[:, :, cur:cur + n].max(-1).values)
        cur += n
    final.append(pred[:, :, -1])
    return torch.stack(final, dim=-1)


class Predictor(nn.Module):
    """FC-CLIP's ``MultiScaleMaskedTransformerDecoder``."""

    def __init__(self, d: int, heads: int, layers: int, queries: int, ffn: int,
                 clip_dim: int) -> None:
        super().__init__()
        self.heads = heads
        self.transformer_self_attention_layers = nn.ModuleList(
            AttnLayer(d, heads, 'self_attn') for _ in range(layers))
        self.transformer_cross_attention_layers = nn.ModuleList(
            AttnLayer(d, heads, 'multihead_attn') for _ in range(layers))
        self.transformer_ffn_layers = nn.ModuleList(FFNLayer(d, ffn) for _ in range(layers))
        self.decoder_norm = nn.LayerNorm(d)
        self.query_feat = nn.Embedding(queries, d)
        self.query_embed = nn.Embedding(queries, d)
        self.level_embed = nn.Embedding(3, d)
        self.input_proj = nn.ModuleList(nn.Sequential() for _ in range(3))
        self.mask_embed = MLP(d, d, d, 3)
        self._mask_pooling_proj = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d))
        self.class_embed = MLP(d, d, clip_dim, 3)
        self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))

    def heads_(self, output, mask_features, size, text_classifier, num_templates):
        out = self.decoder_norm(output).transpose(0, 1)
        masks = torch.einsum('bqc,bchw->bqhw', self.mask_embed(out), mask_features)
        pooled = self._mask_pooling_proj(mask_pooling(mask_features, masks))
        cls = get_classification_logits(self.class_embed(pooled + out), text_classifier,
                                        self.logit_scale, num_templates)
        attn = F.interpolate(masks, size=size, mode='bilinear', align_corners=False)
        attn = (attn.sigmoid().flatten(2).unsqueeze(1).repeat(1, self.heads, 1, 1)
                .flatten(0, 1) < 0.5).bool().detach()
        return cls, masks, attn

    def forward(self, x, mask_features, text_classifier, num_templates):
        src, pos, sizes = [], [], []
        for i in range(3):
            sizes.append(x[i].shape[-2:])
            pos.append(sine_pos(x[i], x[i].shape[1] // 2).flatten(2).permute(2, 0, 1))
            src.append((self.input_proj[i](x[i]).flatten(2)
                        + self.level_embed.weight[i][None, :, None]).permute(2, 0, 1))
        bs = src[0].shape[1]
        query_embed = self.query_embed.weight.unsqueeze(1).repeat(1, bs, 1)
        output = self.query_feat.weight.unsqueeze(1).repeat(1, bs, 1)
        cls, masks, attn = self.heads_(output, mask_features, sizes[0], text_classifier,
                                       num_templates)
        for i in range(len(self.transformer_ffn_layers)):
            level = i % 3
            attn[torch.where(attn.sum(-1) == attn.shape[-1])] = False
            ca = self.transformer_cross_attention_layers[i]
            output = ca.norm(output + ca.multihead_attn(
                query=output + query_embed, key=src[level] + pos[level], value=src[level],
                attn_mask=attn)[0])
            sa = self.transformer_self_attention_layers[i]
            q = output + query_embed
            output = sa.norm(output + sa.self_attn(q, q, value=output)[0])
            output = self.transformer_ffn_layers[i](output)
            cls, masks, attn = self.heads_(output, mask_features, sizes[(i + 1) % 3],
                                           text_classifier, num_templates)
        return cls, masks


class SemSegHead(nn.Module):
    def __init__(self, channels, d, heads, enc_layers, dec_layers, queries, clip_dim):
        super().__init__()
        self.pixel_decoder = PixelDecoder(channels, d, heads, enc_layers)
        self.predictor = Predictor(d, heads, dec_layers, queries, 2 * d, clip_dim)


class ShortCutCrossAttention(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(d, heads)
        self.norm = nn.LayerNorm(d)
        self.MLP = nn.Linear(d, d)


class CDT(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.d = d
        self.cross_atten = ShortCutCrossAttention(d, heads)

    def forward(self, img_feat, text_classifier):
        text = text_classifier.unsqueeze(0).repeat(img_feat.shape[0], 1, 1).permute(1, 0, 2)
        pos = sine_pos(img_feat, self.d // 2).flatten(2).permute(2, 0, 1)
        mem = img_feat.flatten(2).permute(2, 0, 1)
        ca = self.cross_atten
        attn = ca.multihead_attn(query=text, key=mem + pos, value=mem)[0]
        return ca.norm(text + ca.MLP(attn)).permute(1, 0, 2)


class ClipBackbone(nn.Module):
    """``clip.py`` ``CLIP``: the open_clip model as ``clip_model``."""

    def __init__(self, clip_model: nn.Module) -> None:
        super().__init__()
        self.clip_model = clip_model

    def extract_features(self, x):
        trunk = self.clip_model.visual.trunk
        x = trunk.stem(x)
        out = []
        for i in range(4):
            x = trunk.stages[i](x)
            out.append(x)
        return out, trunk.norm_pre(x)

    def visual_prediction_forward(self, x):
        b, q, c = x.shape
        x = self.clip_model.visual.trunk.head(x.reshape(b * q, c, 1, 1))
        return self.clip_model.visual.head(x).view(b, q, -1)


class ReleasedMAFTPlus(nn.Module):
    """``MAFT_Plus``'s parameters under their names, and its semantic inference."""

    def __init__(self, student: nn.Module, teacher: nn.Module, channels: list[int], d: int,
                 heads: int, enc_layers: int, dec_layers: int, queries: int, clip_dim: int,
                 num_classes: int) -> None:
        super().__init__()
        self.backbone = ClipBackbone(student)
        self.backbone_t = ClipBackbone(teacher)
        self.sem_seg_head = SemSegHead(channels, d, heads, enc_layers, dec_layers, queries,
                                       clip_dim)
        self.void_embedding = nn.Embedding(1, clip_dim)
        self.cdt = CDT(clip_dim, 8)
        self.criterion = nn.Module()
        self.criterion.register_buffer('empty_weight', torch.ones(num_classes + 1))

    @torch.no_grad()
    def semantic(self, images: Tensor, text_classifier: Tensor,
                 num_templates: list[int]) -> Tensor:
        """(B, K, H, W) ``semantic_inference`` of the eval branch, before sem_seg_postprocess."""
        text_classifier = torch.cat(
            [text_classifier, F.normalize(self.void_embedding.weight, dim=-1)], dim=0)
        stages, clip_feature = self.backbone.extract_features(images)
        mask_features, _, multi_scale = self.sem_seg_head.pixel_decoder.forward_features(stages)
        cls, masks = self.sem_seg_head.predictor(multi_scale, mask_features, text_classifier,
                                                 num_templates)
        pool_masks = F.interpolate(masks, size=clip_feature.shape[-2:], mode='bilinear',
                                   align_corners=False)
        pooled = self.backbone.visual_prediction_forward(mask_pooling(clip_feature, pool_masks))
        b, c, h, w = clip_feature.shape
        x = clip_feature.reshape(b * h * w, c).unsqueeze(-1).unsqueeze(-1)
        x = self.backbone.clip_model.visual.head(self.backbone.clip_model.visual.trunk.head(x))
        img_feat = x.reshape(b, h, w, x.shape[-1]).permute(0, 3, 1, 2)
        text_classifier = self.cdt(img_feat, text_classifier)
        out_vocab = get_classification_logits(pooled, text_classifier,
                                              self.backbone.clip_model.logit_scale,
                                              num_templates)
        is_void_prob = F.softmax(cls, dim=-1)[..., -1:]
        probs = torch.cat([out_vocab[..., :-1].softmax(-1) * (1.0 - is_void_prob),
                           is_void_prob], dim=-1)
        mask_cls = torch.log(probs + 1e-8)
        masks = F.interpolate(masks, size=images.shape[-2:], mode='bilinear',
                              align_corners=False)
        return torch.einsum('bqc,bqhw->bchw', F.softmax(mask_cls, dim=-1)[..., :-1],
                            masks.sigmoid())
