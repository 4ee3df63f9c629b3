"""A plain-torch re-implementation of the released CAT-Seg (KU-CVLAB/CAT-Seg@6d3a188), the
ground truth of the converter test: its ``state_dict`` has the released ``model_final.pth`` keys
(``sem_seg_head.predictor.clip_model.*`` with q/k/v split as ``third_party/model_vpt.py``,
``sem_seg_head.predictor.transformer.*`` = ``modeling/transformer/model.py`` ``Aggregator``,
``upsample1``/``upsample2`` of ``cat_seg_model.py``) and its arithmetic follows the released
code line by line, at any (tiny) size. Written from the released files; no detectron2.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn


# ----------------------------------------------------------------- model_vpt.py (CLIP)
class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class SplitAttention(nn.MultiheadAttention):
    """model_vpt ``Attention``: in_proj_weight split into q/k/v_proj_weight."""

    def __init__(self, d, heads):
        super().__init__(d, heads)
        self._qkv_same_embed_dim = False
        q, k, v = self.in_proj_weight.chunk(3, dim=0)
        self.q_proj_weight, self.k_proj_weight, self.v_proj_weight = (
            nn.Parameter(q), nn.Parameter(k), nn.Parameter(v))
        self.in_proj_weight = None


class Block(nn.Module):
    def __init__(self, d, heads, attn_mask=None):
        super().__init__()
        self.attn = SplitAttention(d, heads)
        self.ln_1 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(OrderedDict([('c_fc', nn.Linear(d, 4 * d)), ('gelu', QuickGELU()),
                                              ('c_proj', nn.Linear(4 * d, d))]))
        self.ln_2 = nn.LayerNorm(d)
        self.attn_mask = attn_mask

    def forward(self, x):  # LND
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False, attn_mask=self.attn_mask)[0]
        return x + self.mlp(self.ln_2(x))

    def forward_dense(self, x):
        y = self.ln_1(x)
        proj = torch.cat((self.attn.q_proj_weight, self.attn.k_proj_weight,
                          self.attn.v_proj_weight), dim=0)
        y = F.linear(y, proj, self.attn.in_proj_bias)
        L, N, D = y.shape
        y = y.reshape(L, N, 3, D // 3).permute(2, 1, 0, 3).reshape(3 * N, L, D // 3)
        y = F.linear(y, self.attn.out_proj.weight, self.attn.out_proj.bias)
        q, k, v = y.tensor_split(3, dim=0)
        v = v.transpose(1, 0) + x[:1]
        return v + self.mlp(self.ln_2(v))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, attn_mask=None):
        super().__init__()
        self.resblocks = nn.Sequential(*[Block(width, heads, attn_mask) for _ in range(layers)])

    def forward(self, x, dense=False):
        for i, block in enumerate(self.resblocks):
            x = block.forward_dense(x) if dense and i == len(self.resblocks) - 1 else block(x)
        return x


class Visual(nn.Module):
    def __init__(self, resolution, patch, width, layers, heads, out_dim):
        super().__init__()
        self.patch, self.resolution = patch, resolution
        self.conv1 = nn.Conv2d(3, width, patch, patch, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(width) * width ** -0.5)
        self.positional_embedding = nn.Parameter(
            torch.randn((resolution // patch) ** 2 + 1, width) * width ** -0.5)
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.randn(width, out_dim) * width ** -0.5)

    def resized_pos_embed(self, tokens):
        L, D = self.positional_embedding.shape
        side, new = self.resolution // self.patch, int((tokens - 1) ** 0.5)
        pos = self.positional_embedding[1:].reshape(1, side, side, D).permute(0, 3, 1, 2)
        pos = F.interpolate(pos, size=(new, new), mode='bicubic', align_corners=False)
        return torch.cat((self.positional_embedding[:1], pos.squeeze(0).reshape(D, -1).T))

    def forward(self, x):  # dense=True
        x = self.conv1(x).flatten(2).permute(0, 2, 1)
        cls = self.class_embedding + torch.zeros(x.shape[0], 1, x.shape[-1])
        x = torch.cat([cls, x], dim=1)
        if x.shape[1] != self.positional_embedding.shape[0]:
            x = x + self.resized_pos_embed(x.shape[1])
        else:
            x = x + self.positional_embedding
        x = self.ln_pre(x).permute(1, 0, 2)
        x = self.transformer(x, dense=True).permute(1, 0, 2)
        return self.ln_post(x) @ self.proj


class CLIP(nn.Module):
    def __init__(self, embed_dim, resolution, patch, vision_width, vision_layers, vision_heads,
                 context, vocab, width, heads, layers):
        super().__init__()
        self.visual = Visual(resolution, patch, vision_width, vision_layers, vision_heads,
                             embed_dim)
        mask = torch.full((context, context), float('-inf')).triu_(1)
        self.transformer = Transformer(width, layers, heads, mask)
        self.token_embedding = nn.Embedding(vocab, width)
        self.positional_embedding = nn.Parameter(torch.randn(context, width) * 0.01)
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Parameter(torch.randn(width, embed_dim) * width ** -0.5)
        self.logit_scale = nn.Parameter(torch.tensor(4.6052))

    def encode_text(self, text):
        x = self.token_embedding(text) + self.positional_embedding
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection


# ----------------------------------------------------------------- model.py (Aggregator)
def window_partition(x, w):
    B, H, W, C = x.shape
    x = x.view(B, H // w, w, W // w, w, C)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, w, w, C)


def window_reverse(windows, w, H, W):
    B = int(windows.shape[0] / (H * W / w / w))
    x = windows.view(B, H // w, W // w, w, w, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(B, H, W, -1)


class WindowAttention(nn.Module):
    def __init__(self, dim, gdim, heads):
        super().__init__()
        self.dim, self.heads, self.scale = dim, heads, (dim // heads) ** -0.5
        self.q = nn.Linear(dim + gdim, dim)
        self.k = nn.Linear(dim + gdim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, mask=None):
        B_, N, C = x.shape
        q = self.q(x).reshape(B_, N, self.heads, -1).permute(0, 2, 1, 3)
        k = self.k(x).reshape(B_, N, self.heads, -1).permute(0, 2, 1, 3)
        v = self.v(x[:, :, :self.dim]).reshape(B_, N, self.heads, -1).permute(0, 2, 1, 3)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(B_ // nw, nw, self.heads, N, N) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.heads, N, N)
        x = (attn.softmax(-1) @ v).transpose(1, 2).reshape(B_, N, -1)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class SwinBlock(nn.Module):
    def __init__(self, dim, gdim, res, heads, window, shift):
        super().__init__()
        self.dim, self.res, self.window, self.shift = dim, res, window, shift
        if min(res) <= window:
            self.shift, self.window = 0, min(res)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, gdim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim)
        mask = None
        if self.shift > 0:
            H, W = res
            img = torch.zeros((1, H, W, 1))
            cnt = 0
            w, s = self.window, self.shift
            for h in (slice(0, -w), slice(-w, -s), slice(-s, None)):
                for ww in (slice(0, -w), slice(-w, -s), slice(-s, None)):
                    img[:, h, ww, :] = cnt
                    cnt += 1
            mw = window_partition(img, w).view(-1, w * w)
            mask = mw.unsqueeze(1) - mw.unsqueeze(2)
            mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)
        self.register_buffer('attn_mask', mask)

    def forward(self, x, g):
        H, W = self.res
        B, L, C = x.shape
        shortcut = x
        x = torch.cat([self.norm1(x).view(B, H, W, C), g.view(B, H, W, -1)], dim=-1)
        if self.shift > 0:
            x = torch.roll(x, (-self.shift, -self.shift), (1, 2))
        xw = window_partition(x, self.window).view(-1, self.window ** 2, x.shape[-1])
        aw = self.attn(xw, mask=self.attn_mask).view(-1, self.window, self.window, C)
        x = window_reverse(aw, self.window, H, W)
        if self.shift > 0:
            x = torch.roll(x, (self.shift, self.shift), (1, 2))
        x = shortcut + x.reshape(B, H * W, C)
        return x + self.mlp(self.norm2(x))


class SwinWrapper(nn.Module):
    def __init__(self, dim, gdim, res, heads, window):
        super().__init__()
        self.block_1 = SwinBlock(dim, gdim, res, heads, window, 0)
        self.block_2 = SwinBlock(dim, gdim, res, heads, window, window // 2)
        self.guidance_norm = nn.LayerNorm(gdim)

    def forward(self, x, g):
        B, C, T, H, W = x.shape
        x = x.permute(0, 2, 3, 4, 1).reshape(B * T, H * W, C)
        g = g.permute(0, 2, 3, 1).reshape(B, 1, H * W, -1).expand(B, T, H * W, -1)
        g = self.guidance_norm(g.reshape(B * T, H * W, -1))
        x = self.block_2(self.block_1(x, g), g)
        return x.reshape(B, T, H, W, C).permute(0, 4, 1, 2, 3)


class LinearAttentionLayer(nn.Module):
    def __init__(self, dim, gdim, heads):
        super().__init__()
        self.heads = heads
        self.q, self.k = nn.Linear(dim + gdim, dim), nn.Linear(dim + gdim, dim)
        self.v = nn.Linear(dim, dim)

    def forward(self, x, g):
        xg = torch.cat([x, g], dim=-1)
        B, L, C = x.shape
        q = self.q(xg).reshape(B, L, self.heads, -1)
        k = self.k(xg).reshape(B, L, self.heads, -1)
        v = self.v(x).reshape(B, L, self.heads, -1)
        Q, K = F.elu(q) + 1, F.elu(k) + 1
        S = v.size(1)
        KV = torch.einsum('nshd,nshv->nhdv', K, v / S)
        Z = 1 / (torch.einsum('nlhd,nhd->nlh', Q, K.sum(dim=1)) + 1e-6)
        return (torch.einsum('nlhd,nhdv,nlh->nlhv', Q, KV, Z) * S).reshape(B, L, C)


class ClassLayer(nn.Module):
    def __init__(self, dim, gdim, heads, pool, pad_len):
        super().__init__()
        self.pool = nn.AvgPool2d(pool)
        self.attention = LinearAttentionLayer(dim, gdim, heads)
        self.MLP = nn.Sequential(nn.Linear(dim, 4 * dim), nn.ReLU(), nn.Linear(4 * dim, dim))
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.pad_len = pad_len
        self.padding_tokens = nn.Parameter(torch.zeros(1, 1, dim))
        self.padding_guidance = nn.Parameter(torch.zeros(1, 1, gdim))

    def forward(self, x, g):
        B, C, T, H, W = x.shape
        xp = self.pool(x.transpose(1, 2).reshape(B * T, C, H, W))
        h, w = xp.shape[-2:]
        xp = xp.reshape(B, T, C, h, w).transpose(1, 2)
        if T < self.pad_len:
            pad = self.padding_tokens.reshape(1, C, 1, 1, 1).expand(B, C, self.pad_len - T, h, w)
            xp = torch.cat([xp, pad], dim=2)
            g = torch.cat([g, self.padding_guidance.expand(B, self.pad_len - T, -1)], dim=1)
        Tp = xp.shape[2]
        xp = xp.permute(0, 3, 4, 2, 1).reshape(B * h * w, Tp, C)
        g = g[:, None].expand(B, h * w, Tp, -1).reshape(B * h * w, Tp, -1)
        xp = xp + self.attention(self.norm1(xp), g)
        xp = xp + self.MLP(self.norm2(xp))
        xp = xp.reshape(B, h, w, Tp, C).permute(0, 3, 4, 1, 2).reshape(B * Tp, C, h, w)
        xp = F.interpolate(xp, size=(H, W), mode='bilinear', align_corners=True)
        xp = xp.reshape(B, Tp, C, H, W).transpose(1, 2)[:, :, :T]
        return x + xp


class AggLayer(nn.Module):
    def __init__(self, dim, tg, ag, heads, res, pool, window, pad_len):
        super().__init__()
        self.swin_block = SwinWrapper(dim, ag, res, heads, window)
        self.attention = ClassLayer(dim, tg, heads, pool, pad_len)

    def forward(self, x, ag, tg):
        return self.attention(self.swin_block(x, ag), tg)


def double_conv(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                         nn.GroupNorm(cout // 16, cout), nn.ReLU(),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                         nn.GroupNorm(cout // 16, cout), nn.ReLU())


class Up(nn.Module):
    def __init__(self, cin, cout, gch):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cin - gch, 2, stride=2)
        self.conv = nn.Module()
        self.conv.double_conv = double_conv(cin, cout)

    def forward(self, x, g):
        x = self.up(x)
        g = g.repeat_interleave(x.shape[0] // g.shape[0], dim=0)
        return self.conv.double_conv(torch.cat([x, g], dim=1))


class Aggregator(nn.Module):
    def __init__(self, embed_dim, hidden, layers, heads, res, pool, window, pad_len, tg, ag,
                 decoder_dims, dec_g, dec_gp):
        super().__init__()
        self.pad_len = pad_len
        self.layers = nn.ModuleList(AggLayer(hidden, tg, ag, heads, res, pool, window, pad_len)
                                    for _ in range(layers))
        self.conv1 = nn.Conv2d(1, hidden, 7, 1, 3)
        self.guidance_projection = nn.Sequential(nn.Conv2d(embed_dim, ag, 3, 1, 1), nn.ReLU())
        self.text_guidance_projection = nn.Sequential(nn.Linear(embed_dim, tg), nn.ReLU())
        self.decoder_guidance_projection = nn.ModuleList(
            nn.Sequential(nn.Conv2d(d, p, 3, 1, 1), nn.ReLU()) for d, p in zip(dec_g, dec_gp))
        self.decoder1 = Up(hidden, decoder_dims[0], dec_gp[0])
        self.decoder2 = Up(decoder_dims[0], decoder_dims[1], dec_gp[1])
        self.head = nn.Conv2d(decoder_dims[1], 1, 3, 1, 1)

    def forward(self, img, text, guidance):  # img (B, C, H, W), text (B, T, P, C)
        classes = None
        corr = torch.einsum('bchw,btpc->bpthw', F.normalize(img, dim=1),
                            F.normalize(text, dim=-1))
        if text.size(1) > self.pad_len:
            avg = corr.permute(0, 2, 1, 3, 4).flatten(-3).max(dim=-1)[0]
            classes = avg.topk(self.pad_len, dim=-1, sorted=False)[1]
            th = F.normalize(text, dim=-1)
            th = torch.gather(th, 1, classes[..., None, None].expand(-1, -1, *th.shape[-2:]))
            orig, text = text.size(1), th
            corr = torch.einsum('bchw,btpc->bpthw', F.normalize(img, dim=1), th)
        B, P, T, H, W = corr.shape
        x = self.conv1(corr.transpose(1, 2).reshape(B * T, P, H, W))
        x = x.reshape(B, T, -1, H, W).transpose(1, 2)
        ag = self.guidance_projection(guidance[0])
        dg = [proj(g) for proj, g in zip(self.decoder_guidance_projection, guidance[1:])]
        t = text.mean(dim=-2)
        tg = self.text_guidance_projection(t / t.norm(dim=-1, keepdim=True))
        for layer in self.layers:
            x = layer(x, ag, tg)
        x = x.transpose(1, 2).reshape(B * T, -1, H, W)
        x = self.head(self.decoder2(self.decoder1(x, dg[0]), dg[1]))
        logit = x.reshape(B, T, *x.shape[-2:])
        if classes is not None:
            out = torch.full((B, orig, *logit.shape[-2:]), -100.0)
            out.scatter_(1, classes[..., None, None].expand(-1, -1, *logit.shape[-2:]), logit)
            logit = out
        return logit


# ----------------------------------------------------------------- cat_seg_model.py
class ReleasedCATSeg(nn.Module):
    """``CATSeg`` with its CLIP and aggregator at any size (images already CLIP-normalised)."""

    def __init__(self, clip: dict, agg: dict, layer_indexes, clip_resolution, up_dims):
        super().__init__()
        self.sem_seg_head = nn.Module()
        self.sem_seg_head.predictor = nn.Module()
        self.sem_seg_head.predictor.clip_model = CLIP(**clip)
        self.sem_seg_head.predictor.transformer = Aggregator(**agg)
        width = clip['vision_width']
        self.upsample1 = nn.ConvTranspose2d(width, up_dims[0], 2, stride=2)
        self.upsample2 = nn.ConvTranspose2d(width, up_dims[1], 4, stride=4)
        self.clip_resolution = clip_resolution
        self.layers = []
        for i in layer_indexes:
            self.clip_model.visual.transformer.resblocks[i].register_forward_hook(
                lambda m, _, o: self.layers.append(o))

    @property
    def clip_model(self):
        return self.sem_seg_head.predictor.clip_model

    def text_embeds(self, tokens):
        """(T, 77) -> (T, 1, D) unit-norm (get_text_embeds, one template)."""
        emb = self.clip_model.encode_text(tokens)
        return (emb / emb.norm(dim=-1, keepdim=True)).unsqueeze(1)

    def logits(self, images, text):
        self.layers = []
        x = F.interpolate(images, size=self.clip_resolution, mode='bilinear',
                          align_corners=False)
        feats = self.clip_model.visual(x)
        B, N, D = feats.shape
        side = int((N - 1) ** 0.5)
        res3 = feats[:, 1:].transpose(1, 2).reshape(B, D, side, side)
        res4, res5 = (layer[1:].permute(1, 2, 0).reshape(B, -1, side, side)
                      for layer in self.layers)
        guidance = [res3, self.upsample1(res4), self.upsample2(res5)]
        text = text[None].repeat(B, 1, 1, 1)
        return self.sem_seg_head.predictor.transformer(res3, text, guidance)

    def loss(self, images, targets, text, ignore_value=255):
        out = self.logits(images, text)
        out = F.interpolate(out, size=targets.shape[-2:], mode='bilinear', align_corners=False)
        mask = targets != ignore_value
        out = out.permute(0, 2, 3, 1)
        t = torch.zeros(out.shape)
        t[mask] = F.one_hot(targets[mask], num_classes=out.shape[-1]).float()
        return F.binary_cross_entropy_with_logits(out, t)

    def sliding_window(self, image, text, kernel, overlap, out_res, height, width):
        """inference_sliding_window on a CLIP-normalised (1, 3, H, W) image (normalising and
        bilinear resizing commute), then sem_seg_postprocess to (height, width)."""
        stride = int(kernel * (1 - overlap))
        unfold = nn.Unfold(kernel_size=kernel, stride=stride)
        fold = nn.Fold(out_res, kernel_size=kernel, stride=stride)
        big = F.interpolate(image, size=out_res, mode='bilinear', align_corners=False)[0]
        crops = unfold(big).T.reshape(-1, 3, kernel, kernel)
        glob = F.interpolate(image, size=(kernel, kernel), mode='bilinear', align_corners=False)
        out = self.logits(torch.cat((crops, glob)), text)
        out = F.interpolate(out, size=kernel, mode='bilinear', align_corners=False).sigmoid()
        g = F.interpolate(out[-1:], size=out_res, mode='bilinear', align_corners=False)
        out = fold(out[:-1].flatten(1).T) / fold(unfold(torch.ones([1] + list(out_res))))
        out = (out + g) / 2.0
        return F.interpolate(out, size=(height, width), mode='bilinear', align_corners=False)[0]
