"""Reference of the *released* MTA-CLIP (anurag-198/MTA_CLIP@a62deff) for tests.

``ReleasedHead`` has ``Mask2FormerHead_det``'s attributes under its names (so its
``state_dict()`` is the released head's), built from the same mmdet parts as the release, and
a forward transcribed from ``mask2former_head_det.py`` (``forward`` / ``_forward_head``) and
``mask2former_head_seg.py`` (``predict``). The backbone and text encoder are DenseCLIP's
(``mta_clip/models.py`` is DenseCLIP's ``models.py``), so their keys and forward come from
``denseclip_reference``; ``MTA_CLIP.contexts`` holds ``n_contexts`` sets and the text encoder
runs once per set (``CLIPTextContextEncoder.forward(text, context)`` with B = n_contexts).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from torch import Tensor, nn

import denseclip  # noqa: F401  first: installs the mmcv._ext shim mmdet's parts need
import denseclip_reference as dr
from denseclip.registry import MMDET_MODELS

State = dict[str, Tensor]


def decoder_cfgs(feat: int, heads: int, layers: int, enc_layers: int = 1) -> dict:
    """The pixel decoder and transformer decoder settings of r50_1.py at another size."""
    return dict(
        pixel_decoder=dict(
            type='mmdet.MSDeformAttnPixelDecoder', num_outs=3,
            norm_cfg=dict(type='GN', num_groups=8), act_cfg=dict(type='ReLU'),
            encoder=dict(num_layers=enc_layers, layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=feat, num_heads=heads, num_levels=3,
                                   num_points=2, im2col_step=64, dropout=0.0, batch_first=True,
                                   norm_cfg=None, init_cfg=None),
                ffn_cfg=dict(embed_dims=feat, feedforward_channels=2 * feat, num_fcs=2,
                             ffn_drop=0.0, act_cfg=dict(type='ReLU', inplace=True))),
                init_cfg=None),
            positional_encoding=dict(num_feats=feat // 2, normalize=True), init_cfg=None),
        positional_encoding=dict(num_feats=feat // 2, normalize=True),
        transformer_decoder=dict(
            return_intermediate=True, num_layers=layers,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=feat, num_heads=heads, attn_drop=0.0,
                                   proj_drop=0.0, dropout_layer=None, batch_first=True),
                cross_attn_cfg=dict(embed_dims=feat, num_heads=heads, attn_drop=0.0,
                                    proj_drop=0.0, dropout_layer=None, batch_first=True),
                ffn_cfg=dict(embed_dims=feat, feedforward_channels=2 * feat, num_fcs=2,
                             act_cfg=dict(type='ReLU', inplace=True), ffn_drop=0.0,
                             dropout_layer=None, add_identity=True)),
            init_cfg=None))


class ReleasedHead(nn.Module):
    """``Mask2FormerHead_det`` / ``Mask2FormerHead_lang``'s modules, in their creation order."""

    def __init__(self, in_channels: list[int], feat: int, num_classes: int, num_queries: int,
                 n_contexts: int, text_dim: int, heads: int, layers: int) -> None:
        super().__init__()
        from mmdet.models.layers import Mask2FormerTransformerDecoder, SinePositionalEncoding
        cfgs = decoder_cfgs(feat, heads, layers)
        self.num_queries, self.num_heads, self.levels = num_queries, heads, 3
        self.pixel_decoder = MMDET_MODELS.build(ConfigDict(
            cfgs['pixel_decoder'], in_channels=in_channels, strides=[4, 8, 16, 32],
            feat_channels=feat, out_channels=feat))
        self.transformer_decoder = Mask2FormerTransformerDecoder(
            **ConfigDict(cfgs['transformer_decoder']))
        self.gamma = nn.Parameter(torch.ones(text_dim) * 1e-4)
        self.visual_emb_proj = nn.Conv2d(text_dim, feat, kernel_size=1)
        self.decoder_input_projs = nn.ModuleList([nn.Identity() for _ in range(3)])
        self.decoder_positional_encoding = SinePositionalEncoding(**cfgs['positional_encoding'])
        self.query_embed_decoder = nn.Embedding(num_queries + n_contexts * (num_classes + 1),
                                                feat)
        self.query_feat = nn.Embedding(num_queries, feat)
        self.level_embed = nn.Embedding(3, feat)
        self.cls_embed = nn.Linear(feat, num_classes + 1)
        self.lang_embed = nn.Linear(feat, num_classes + 1)
        self.query_project = nn.Linear(text_dim, feat)
        self.query_reproject = nn.Linear(feat, text_dim)
        self.mask_reproject = nn.Linear(feat, text_dim)
        self.norm_project = nn.LayerNorm(feat)
        self.norm_reproject = nn.LayerNorm(text_dim)
        self.mask_embed = nn.Sequential(
            nn.Linear(feat, feat), nn.ReLU(inplace=True), nn.Linear(feat, feat),
            nn.ReLU(inplace=True), nn.Linear(feat, feat))

    def _forward_head(self, decoder_out, mask_feature, text_embedding, attn_mask_target_size):
        decoder_out = self.transformer_decoder.post_norm(decoder_out)
        query_mask = decoder_out[:, :self.num_queries, :].clone()
        query_text = decoder_out[:, self.num_queries:, :].clone()
        query_text_project = self.norm_reproject(self.query_reproject(query_text))
        ncontexts = len(text_embedding)
        b, n, c = query_text_project.shape
        query_text_project = query_text_project.reshape(b, ncontexts, -1, c).permute(1, 0, 2, 3)
        query_mask_project = self.mask_reproject(query_mask)
        text = text_embedding + self.gamma * query_text_project
        text = F.normalize(text, dim=3, p=2)
        query_mask_project = F.normalize(query_mask_project, dim=2, p=2)
        query_pred = torch.einsum('bqc,zbnc->zbqn', query_mask_project, text)
        cls_pred = self.cls_embed(decoder_out)
        cls_pred_final = cls_pred[:, :self.num_queries, :]
        mask_embed = self.mask_embed(decoder_out)
        mask_pred = torch.einsum('bqc,bchw->bqhw', mask_embed, mask_feature)
        mask_pred_final = mask_pred[:, :self.num_queries, :]
        attn_mask = F.interpolate(mask_pred, attn_mask_target_size, mode='bilinear',
                                  align_corners=False)
        attn_mask = attn_mask.flatten(2).unsqueeze(1).repeat((1, self.num_heads, 1, 1)).flatten(
            0, 1)
        attn_mask = (attn_mask.sigmoid() < 0.5).detach()
        return cls_pred_final, query_pred, mask_pred_final, attn_mask

    def forward(self, x: list[Tensor], text_embedding: Tensor):
        """``text_embedding`` (Z, B, K+1, D) as ``MTA_CLIP.after_extract_feat`` gives it."""
        batch_size = x[0].shape[0]
        query_feat = self.query_feat.weight.unsqueeze(0).repeat((batch_size, 1, 1))
        query_embed_decoder = self.query_embed_decoder.weight.unsqueeze(0).repeat(
            (batch_size, 1, 1))
        text_embedding_projected = self.query_project(text_embedding)
        cb = [query_feat] + [text_embedding_projected[k]
                             for k in range(text_embedding_projected.shape[0])]
        query_feat = self.norm_project(torch.cat(cb, dim=1))
        mask_features, multi_scale_memorys = self.pixel_decoder(x)
        decoder_inputs, decoder_positional_encodings = [], []
        for i in range(self.levels):
            decoder_input = self.decoder_input_projs[i](multi_scale_memorys[i])
            decoder_input = decoder_input.flatten(2).permute(0, 2, 1)
            decoder_input = decoder_input + self.level_embed.weight[i].view(1, 1, -1)
            mask = decoder_input.new_zeros((batch_size,) + multi_scale_memorys[i].shape[-2:],
                                           dtype=torch.bool)
            pos = self.decoder_positional_encoding(mask).flatten(2).permute(0, 2, 1)
            decoder_inputs.append(decoder_input)
            decoder_positional_encodings.append(pos)
        cls_pred_list, query_pred_list, mask_pred_list = [], [], []
        cls_pred, query_pred, mask_pred, attn_mask = self._forward_head(
            query_feat, mask_features, text_embedding, multi_scale_memorys[0].shape[-2:])
        for i in range(len(self.transformer_decoder.layers)):
            level_idx = i % self.levels
            attn_mask[torch.where(attn_mask.sum(-1) == attn_mask.shape[-1])] = False
            layer = self.transformer_decoder.layers[i]
            query_feat = layer(
                query=query_feat, key=decoder_inputs[level_idx], value=decoder_inputs[level_idx],
                query_pos=query_embed_decoder, key_pos=decoder_positional_encodings[level_idx],
                cross_attn_mask=attn_mask, query_key_padding_mask=None, key_padding_mask=None)
            cls_pred, query_score, mask_pred, attn_mask = self._forward_head(
                query_feat, mask_features, text_embedding,
                multi_scale_memorys[(i + 1) % self.levels].shape[-2:])
            cls_pred_list.append(cls_pred)
            mask_pred_list.append(mask_pred)
            query_pred_list.append(query_score)
        return cls_pred_list, query_pred_list, mask_pred_list

    def predict(self, x: list[Tensor], text_embedding: Tensor, size: tuple[int, int]) -> Tensor:
        all_cls_scores, _, all_mask_preds = self(x, text_embedding)
        mask_pred = F.interpolate(all_mask_preds[-1], size=size, mode='bilinear',
                                  align_corners=False).sigmoid()
        cls_score = F.softmax(all_cls_scores[-1], dim=-1)[..., :-1]
        return torch.einsum('bqc, bqhw->bchw', cls_score, mask_pred)


SIZES = dict(feat=16, num_queries=5, n_contexts=3, heads=2, layers=3)


def released_head(num_classes: int, text_dim: int, in_channels: list[int]) -> ReleasedHead:
    return ReleasedHead(in_channels, SIZES['feat'], num_classes, SIZES['num_queries'],
                        SIZES['n_contexts'], text_dim, SIZES['heads'], SIZES['layers'])


def released_state_dict(num_classes: int, seed: int = 0) -> State:
    """Random weights in the released ``MTA_CLIP.state_dict()`` layout (tiny RN50-style CLIP
    of ``denseclip_reference``; K + 1 = ``num_classes`` + 'none' class texts)."""
    cfg = dr._sizes('resnet', {})
    gen = torch.Generator().manual_seed(seed)
    state = {k: dr._init(k, s, gen) for k, s in dr._shapes('resnet', num_classes, cfg)
             if k.startswith(('backbone.', 'text_encoder.'))}
    n_ctx = cfg['context_length'] - dr.CLASS_TOKENS
    state['contexts'] = torch.randn(SIZES['n_contexts'], n_ctx, cfg['text_width'],
                                    generator=gen).clamp(-2, 2)
    state['gamma'] = torch.ones(cfg['embed_dim']) * 1e-4  # MTA_CLIP.gamma (unused)
    w = cfg['width']
    head = released_head(num_classes, cfg['embed_dim'], [4 * w, 8 * w, 16 * w, 32 * w])
    for key, value in head.state_dict().items():
        if key == 'gamma':  # large enough that the text refinement shows in the scores
            state['decode_head.gamma'] = 0.3 + 0.1 * torch.rand(value.shape, generator=gen)
        else:
            state['decode_head.' + key] = dr._init(key, tuple(value.shape), gen)
    return state


def released_forward(state: State, images: Tensor, names: list[str]) -> dict:
    """Eval-mode released MTA-CLIP on ``images``: per-layer outputs and ``predict``'s map.

    ``names`` are the class names with 'none' last (train.py appends it)."""
    cfg = dr._sizes('resnet', {})
    levels, _, _ = dr._resnet(state, images)
    tokens = dr.released_tokenize(names)
    texts = torch.stack([dr._text({**state, 'contexts': ctx[None]}, tokens, cfg)[0]
                         for ctx in state['contexts']])  # (Z, K+1, D)
    w = cfg['width']
    head = released_head(len(names) - 1, cfg['embed_dim'], [4 * w, 8 * w, 16 * w, 32 * w])
    head.load_state_dict({k[len('decode_head.'):]: v for k, v in state.items()
                          if k.startswith('decode_head.')})
    head.eval()
    text_embedding = texts[:, None].expand(-1, images.shape[0], -1, -1)
    with torch.no_grad():
        cls, scores, masks = head(levels, text_embedding)
        probs = head.predict(levels, text_embedding, tuple(images.shape[-2:]))
    return dict(levels=levels, text=texts, cls=cls, scores=scores, masks=masks, probs=probs)
