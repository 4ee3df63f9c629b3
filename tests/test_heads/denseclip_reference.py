"""Plain-PyTorch reference of the *released* DenseCLIP segmentor (raoyongming/DenseCLIP).

Written from ``segmentation/denseclip/{models,denseclip,heads,untils}.py`` and
``segmentation/configs/*.py`` of the release, as ground truth for tests: random weights in the
released ``state_dict()`` layout, and the forward of ``DenseCLIP.encode_decode`` before its resize.
Only the FPN neck and FPNHead are taken from mmseg (1.x here), as the release takes them from
mmseg 0.x. Their state-dict keys are identical in both versions: ``lateral_convs.i.conv.*`` /
``fpn_convs.i.conv.*`` and ``conv_seg.*`` + ``scale_heads.i.j.{conv,bn}.*`` (0.x BaseDecodeHead
builds ``conv_seg = Conv2d(channels, num_classes, 1)`` like 1.x; the loss modules hold no state).
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor

import denseclip  # noqa: F401  first: installs the mmcv._ext shim mmseg 1.x heads need

State = dict[str, Tensor]
RESNET = dict(layers=(1, 1, 1, 1), width=8, output_dim=32, input_resolution=64)
VIT = dict(width=32, layers=4, heads=2, patch_size=16, output_dim=32, input_resolution=64,
           out_indices=(0, 1, 2, 3))
COMMON = dict(vocab_size=49408, text_width=32, text_heads=2, text_layers=2, context_length=13,
              transformer_width=16, transformer_heads=2, transformer_layers=2,
              neck_channels=16, head_channels=16)
ATTNPOOL_HEADS = 32  # as in models.py: AttentionPool2d(input_resolution // 32, embed_dim, 32, ...)
CLASS_TOKENS = 5  # as in configs/denseclip_fpn_*.py: DenseCLIP(context_length=5)


def _sizes(arch: str, sizes: dict) -> dict:
    if arch not in ('resnet', 'vit'):
        raise ValueError(f'arch must be resnet or vit, got {arch!r}')
    cfg = {**COMMON, **(RESNET if arch == 'resnet' else VIT), **sizes}
    cfg.setdefault('embed_dim', cfg['output_dim'])
    return cfg


def _mmseg_neck_head(in_channels: list[int], cfg: dict,
                     num_classes: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    """mmseg FPN + FPNHead as in the release's configs (BN instead of SyncBN: same keys/eval)."""
    from mmseg.models.decode_heads import FPNHead
    from mmseg.models.necks import FPN
    out = cfg['neck_channels']
    with torch.random.fork_rng(devices=[]):  # their default init must not move the global RNG
        neck = FPN(in_channels=in_channels, out_channels=out, num_outs=4)
        head = FPNHead(in_channels=[out] * 4, in_index=[0, 1, 2, 3],
                       feature_strides=[4, 8, 16, 32], channels=cfg['head_channels'],
                       num_classes=num_classes, norm_cfg=dict(type='BN', requires_grad=True),
                       align_corners=False)
    return neck.eval(), head.eval()


def _shapes(arch: str, num_classes: int, cfg: dict) -> list[tuple[str, tuple[int, ...]]]:
    """(key, shape) of the released DenseCLIP ``state_dict()``, in its order (own params first)."""
    out: list[tuple[str, tuple[int, ...]]] = []
    add = lambda k, *s: out.append((k, tuple(s)))  # noqa: E731
    norm = lambda p, c: (add(p + 'weight', c), add(p + 'bias', c))  # noqa: E731

    def lin(p: str, i: int, o: int, bias: bool = True) -> None:
        add(p + 'weight', o, i)
        if bias:
            add(p + 'bias', o)

    def bn(p: str, c: int) -> None:
        for n in ('weight', 'bias', 'running_mean', 'running_var'):
            add(p + n, c)
        add(p + 'num_batches_tracked')

    def blocks(p: str, w: int, n: int) -> None:  # models.py: Transformer / ResidualAttentionBlock
        for i in range(n):
            q = f'{p}transformer.resblocks.{i}.'
            add(q + 'attn.in_proj_weight', 3 * w, w), add(q + 'attn.in_proj_bias', 3 * w)
            lin(q + 'attn.out_proj.', w, w), norm(q + 'ln_1.', w)
            lin(q + 'mlp.c_fc.', w, 4 * w), lin(q + 'mlp.c_proj.', 4 * w, w), norm(q + 'ln_2.', w)

    tw, d, b = cfg['text_width'], cfg['output_dim'], 'backbone.'
    add('contexts', 1, cfg['context_length'] - CLASS_TOKENS, tw)  # denseclip.py: self.contexts
    add('gamma', cfg['embed_dim'])  # denseclip.py: torch.ones(text_dim) * 1e-4
    if arch == 'resnet':  # models.py: CLIPResNetWithAttention
        w = cfg['width']
        for i, (ci, co) in enumerate([(3, w // 2), (w // 2, w // 2), (w // 2, w)], 1):
            add(f'{b}conv{i}.weight', co, ci, 3, 3), bn(f'{b}bn{i}.', co)
        inplanes = w
        for li, n in enumerate(cfg['layers']):
            planes = w * 2 ** li
            for bi in range(n):
                q = f'{b}layer{li + 1}.{bi}.'
                add(q + 'conv1.weight', planes, inplanes, 1, 1), bn(q + 'bn1.', planes)
                add(q + 'conv2.weight', planes, planes, 3, 3), bn(q + 'bn2.', planes)
                add(q + 'conv3.weight', 4 * planes, planes, 1, 1), bn(q + 'bn3.', 4 * planes)
                if bi == 0 and (li > 0 or inplanes != 4 * planes):  # Bottleneck.downsample
                    add(q + 'downsample.0.weight', 4 * planes, inplanes, 1, 1)
                    bn(q + 'downsample.1.', 4 * planes)
                inplanes = 4 * planes
        e, s = 32 * w, cfg['input_resolution'] // 32
        add(b + 'attnpool.positional_embedding', s * s + 1, e)
        for n in ('k', 'q', 'v'):
            lin(f'{b}attnpool.{n}_proj.', e, e)
        lin(b + 'attnpool.c_proj.', e, d)
        neck_in = [4 * w, 8 * w, 16 * w, 32 * w + num_classes]  # configs: 2048 + 150
    else:  # models.py: CLIPVisionTransformer(get_embeddings=True, patch_size=16)
        w, p, g = cfg['width'], cfg['patch_size'], cfg['input_resolution'] // cfg['patch_size']
        add(b + 'class_embedding', w), add(b + 'positional_embedding', g * g + 1, w)
        add(b + 'proj', w, d), add(b + 'conv1.weight', w, 3, p, p), norm(b + 'ln_pre.', w)
        blocks(b, w, cfg['layers']), norm(b + 'ln_post.', w)
        norm(b + 'fpn1.0.', w), add(b + 'fpn1.1.weight', w, w, 2, 2), add(b + 'fpn1.1.bias', w)
        bn(b + 'fpn1.2.', w)  # nn.SyncBatchNorm: BatchNorm's keys
        add(b + 'fpn1.4.weight', w, w, 2, 2), add(b + 'fpn1.4.bias', w)
        norm(b + 'fpn2.0.', w), add(b + 'fpn2.1.weight', w, w, 2, 2), add(b + 'fpn2.1.bias', w)
        norm(b + 'fpn3.', w), norm(b + 'fpn4.0.', w)
        neck_in = [w, w, w + num_classes, w]  # configs: [768, 768, 768 + 150, 768]
    t = 'text_encoder.'  # models.py: CLIPTextContextEncoder
    add(t + 'positional_embedding', cfg['context_length'], tw)
    add(t + 'text_projection', tw, cfg['embed_dim'])
    blocks(t, tw, cfg['text_layers'])
    add(t + 'token_embedding.weight', cfg['vocab_size'], tw), norm(t + 'ln_final.', tw)
    c, cw = 'context_decoder.', cfg['transformer_width']  # models.py: ContextDecoder
    norm(c + 'memory_proj.0.', d), lin(c + 'memory_proj.1.', d, cw), norm(c + 'memory_proj.2.', cw)
    norm(c + 'text_proj.0.', d), lin(c + 'text_proj.1.', d, cw)
    for i in range(cfg['transformer_layers']):
        for a in ('self_attn', 'cross_attn'):  # Attention(qkv_bias=False)
            q = f'{c}decoder.{i}.{a}.'
            for n in ('q', 'k', 'v'):
                lin(f'{q}{n}_proj.', cw, cw, bias=False)
            lin(q + 'proj.', cw, cw)
        for n in (1, 2, 3):
            norm(f'{c}decoder.{i}.norm{n}.', cw)
        lin(f'{c}decoder.{i}.mlp.0.', cw, 4 * cw), lin(f'{c}decoder.{i}.mlp.3.', 4 * cw, cw)
    norm(c + 'out_proj.0.', cw), lin(c + 'out_proj.1.', cw, d)
    neck, head = _mmseg_neck_head(neck_in, cfg, num_classes)
    for prefix, module in (('neck.', neck), ('decode_head.', head)):
        out += [(prefix + k, tuple(v.shape)) for k, v in module.state_dict().items()]
    return out


def _init(key: str, shape: tuple[int, ...], gen: torch.Generator) -> Tensor:
    """Seeded values of O(1) activations (fan-in scaled weights), so every part matters."""
    name = key.rsplit('.', 1)[-1]
    randn = functools.partial(torch.randn, shape, generator=gen)
    if name == 'num_batches_tracked':
        return torch.tensor(0)  # int64, as BatchNorm's buffer
    if name == 'running_var':
        return 0.5 + torch.rand(shape, generator=gen)
    if key == 'gamma':
        return 0.5 + 0.05 * randn()
    if key == 'contexts':
        return randn().clamp(-2, 2)  # denseclip.py: nn.init.trunc_normal_ (std 1)
    if 'token_embedding' in key:
        return 0.02 * randn()
    if name in ('proj', 'text_projection'):  # used as x @ P, P: (in, out)
        return randn() * shape[0] ** -0.5
    if name in ('positional_embedding', 'class_embedding'):
        return randn() * shape[-1] ** -0.5
    if name.endswith('bias') or name == 'running_mean':
        return 0.05 * randn()
    if len(shape) == 1:  # LayerNorm / GroupNorm / BatchNorm weight
        return 1 + 0.1 * randn()
    return randn() * math.prod(shape[1:]) ** -0.5


def released_state_dict(arch: str, *, num_classes: int, seed: int = 0, **sizes) -> State:
    """Random weights of a tiny released DenseCLIP, with exactly its ``state_dict()`` keys.

    ``arch``: ``'resnet'`` (CLIPResNetWithAttention) or ``'vit'`` (CLIPVisionTransformer, patch
    16, get_embeddings=True); ``sizes`` override ``RESNET``/``VIT`` and ``COMMON``.
    """
    cfg, gen = _sizes(arch, sizes), torch.Generator().manual_seed(seed)
    return {k: _init(k, s, gen) for k, s in _shapes(arch, num_classes, cfg)}


@functools.lru_cache(maxsize=1)
def _tokenizer():  # open_clip's copy of CLIP's BPE (same vocab as untils.py)
    from open_clip.tokenizer import SimpleTokenizer
    return SimpleTokenizer()


def released_tokenize(names: list[str], context_length: int = CLASS_TOKENS) -> Tensor:
    """(K, 5) int64 class tokens [SOT, <=3 BPE, EOT, 0...], as untils.py ``tokenize``.

    Raises RuntimeError when a name does not fit (the release's ``truncate=False`` default).
    """
    tok = _tokenizer()
    out = torch.zeros(len(names), context_length, dtype=torch.long)
    for i, name in enumerate(names):
        ids = [tok.sot_token_id] + tok.encode(name) + [tok.eot_token_id]
        if len(ids) > context_length:
            raise RuntimeError(f'Input {name} is too long for context length {context_length}')
        out[i, :len(ids)] = torch.tensor(ids)
    return out


# ---- functional layers reading from the state dict ------------------------------------------
def _lin(s: State, p: str, x: Tensor) -> Tensor:
    return F.linear(x, s[p + 'weight'], s.get(p + 'bias'))


def _ln(s: State, p: str, x: Tensor) -> Tensor:  # models.py LayerNorm: computed in float32
    w = s[p + 'weight']
    return F.layer_norm(x.float(), w.shape, w, s[p + 'bias'], 1e-5).to(x.dtype)


def _bn(s: State, p: str, x: Tensor) -> Tensor:  # eval mode: running statistics
    return F.batch_norm(x, s[p + 'running_mean'], s[p + 'running_var'], s[p + 'weight'],
                        s[p + 'bias'], False, 0.0, 1e-5)


def _attend(q: Tensor, k: Tensor, v: Tensor, heads: int, mask: Tensor | None = None) -> Tensor:
    """Softmax attention of (B, N, C) queries over (B, M, C) keys/values, ``heads`` heads."""
    b, n, c = q.shape
    q, k, v = (t.reshape(b, -1, heads, c // heads).transpose(1, 2) for t in (q, k, v))
    logits = q @ k.transpose(-1, -2) * (c // heads) ** -0.5
    if mask is not None:
        logits = logits + mask
    return (logits.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c)


def _resblock(s: State, p: str, x: Tensor, heads: int, mask: Tensor | None) -> Tensor:
    """models.py ResidualAttentionBlock on (B, L, W) (nn.MultiheadAttention, QuickGELU MLP)."""
    y = _ln(s, p + 'ln_1.', x)
    q, k, v = F.linear(y, s[p + 'attn.in_proj_weight'], s[p + 'attn.in_proj_bias']).chunk(3, -1)
    x = x + _lin(s, p + 'attn.out_proj.', _attend(q, k, v, heads, mask))
    y = _lin(s, p + 'mlp.c_fc.', _ln(s, p + 'ln_2.', x))
    return x + _lin(s, p + 'mlp.c_proj.', y * torch.sigmoid(1.702 * y))


def _resize_pos(pos: Tensor, h: int, w: int) -> Tensor:
    """(S*S, C) grid pos-embed -> (h*w, C), bilinear, align_corners False (as in models.py)."""
    side, c = math.isqrt(pos.shape[0]), pos.shape[1]
    grid = pos.reshape(1, side, side, c).permute(0, 3, 1, 2)
    return F.interpolate(grid, size=(h, w), mode='bilinear').reshape(c, h * w).T


def _resnet(s: State, x: Tensor) -> tuple[list[Tensor], Tensor, Tensor]:
    """models.py CLIPResNetWithAttention: 4 stage maps, g (B, D), z (B, D, H/32, W/32)."""
    for i, stride in ((1, 2), (2, 1), (3, 1)):  # 3-conv stem, then avgpool
        x = F.relu(_bn(s, f'backbone.bn{i}.', F.conv2d(x, s[f'backbone.conv{i}.weight'],
                                                       stride=stride, padding=1)))
    x, levels = F.avg_pool2d(x, 2), []
    for li in range(1, 5):
        bi = 0
        while (p := f'backbone.layer{li}.{bi}.') + 'conv1.weight' in s:  # Bottleneck
            pool = 2 if li > 1 and bi == 0 else 1  # stride-2 avgpool after conv2 (anti-aliased)
            y = F.relu(_bn(s, p + 'bn1.', F.conv2d(x, s[p + 'conv1.weight'])))
            y = F.relu(_bn(s, p + 'bn2.', F.conv2d(y, s[p + 'conv2.weight'], padding=1)))
            y = _bn(s, p + 'bn3.', F.conv2d(F.avg_pool2d(y, pool), s[p + 'conv3.weight']))
            if p + 'downsample.0.weight' in s:  # downsample '-1' avgpool, '0' conv, '1' bn
                x = _bn(s, p + 'downsample.1.', F.conv2d(F.avg_pool2d(x, pool),
                                                         s[p + 'downsample.0.weight']))
            x, bi = F.relu(y + x), bi + 1
        levels.append(x)
    # AttentionPool2d: all HW+1 queries attend over [mean; positions], 32 heads
    b, c, h, w = x.shape
    tok = x.flatten(2).transpose(1, 2)
    tok = torch.cat([tok.mean(1, keepdim=True), tok], 1)
    pos = s['backbone.attnpool.positional_embedding']
    tok = tok + torch.cat([pos[:1], _resize_pos(pos[1:], h, w)])  # resized at every forward
    q, k, v = (_lin(s, f'backbone.attnpool.{n}_proj.', tok) for n in 'qkv')
    out = _lin(s, 'backbone.attnpool.c_proj.', _attend(q, k, v, ATTNPOOL_HEADS))
    return levels, out[:, 0], out[:, 1:].transpose(1, 2).reshape(b, -1, h, w)


def _vit(s: State, x: Tensor, cfg: dict) -> tuple[list[Tensor], Tensor, Tensor]:
    """models.py CLIPVisionTransformer (get_embeddings): fpn1..4 taps, g (B, D), z (B, D, h, w)."""
    x = F.conv2d(x, s['backbone.conv1.weight'], stride=cfg['patch_size'])
    b, c, h, w = x.shape
    cls, pos = s['backbone.class_embedding'], s['backbone.positional_embedding']
    x = torch.cat([cls.expand(b, 1, c), x.flatten(2).transpose(1, 2)], 1)
    # quirk: class_embedding is concatenated AND added again through cls_pos
    x = x + torch.cat([(pos[0] + cls)[None], _resize_pos(pos[1:], h, w)])
    x, feats, i = _ln(s, 'backbone.ln_pre.', x), [], 0
    while (p := f'backbone.transformer.resblocks.{i}.') + 'ln_1.weight' in s:
        x = _resblock(s, p, x, cfg['heads'], None)
        if i in cfg['out_indices']:
            feats.append(x[:, 1:].transpose(1, 2).reshape(b, c, h, w))
        i += 1
    gn = lambda p, y: F.group_norm(y, 1, s[p + 'weight'], s[p + 'bias'], 1e-5)  # noqa: E731
    up = lambda p, y: F.conv_transpose2d(y, s[p + 'weight'], s[p + 'bias'], 2)  # noqa: E731
    f = 'backbone.fpn'
    ops = [lambda y: up(f + '1.4.', F.gelu(_bn(s, f + '1.2.', up(f + '1.1.', gn(f + '1.0.', y))))),
           lambda y: up(f + '2.1.', gn(f + '2.0.', y)), lambda y: gn(f + '3.', y),
           lambda y: F.max_pool2d(gn(f + '4.0.', y), 2, 2)]
    levels = [op(t) for op, t in zip(ops, feats)]
    x = _ln(s, 'backbone.ln_post.', x) @ s['backbone.proj']  # on ALL tokens
    return levels, x[:, 0], x[:, 1:].reshape(b, h, w, -1).permute(0, 3, 1, 2)


def _text(s: State, token_ids: Tensor, cfg: dict) -> Tensor:
    """models.py CLIPTextContextEncoder.forward(text, contexts): (K, 5) ids -> (1, K, C)."""
    p, ctx = 'text_encoder.', s['contexts']
    emb = s[p + 'token_embedding.weight'][token_ids]  # (K, 5, W)
    k, n_ctx = emb.shape[0], ctx.shape[1]
    x = torch.cat([emb[:, :1], ctx.expand(k, -1, -1), emb[:, 1:]], 1)  # [SOS, ctx, rest]
    x = x + s[p + 'positional_embedding']
    mask = torch.full((x.shape[1],) * 2, float('-inf'), device=x.device).triu(1)  # causal
    i = 0
    while (q := f'{p}transformer.resblocks.{i}.') + 'ln_1.weight' in s:
        x, i = _resblock(s, q, x, cfg['text_heads'], mask), i + 1
    x = _ln(s, p + 'ln_final.', x)
    eos = token_ids.argmax(-1) + n_ctx  # EOT has the largest id
    return (x[torch.arange(k, device=x.device), eos] @ s[p + 'text_projection'])[None]


def _context_decoder(s: State, text: Tensor, visual: Tensor, heads: int) -> Tensor:
    """models.py ContextDecoder: text (B, K, C) attends to visual (B, N, C) -> (B, K, C)."""
    c = 'context_decoder.'
    mem = _ln(s, c + 'memory_proj.2.', _lin(s, c + 'memory_proj.1.',
                                           _ln(s, c + 'memory_proj.0.', visual)))
    x, i = _lin(s, c + 'text_proj.1.', _ln(s, c + 'text_proj.0.', text)), 0

    def attn(p: str, q: Tensor, kv: Tensor) -> Tensor:  # Attention: no qkv bias, proj with bias
        qkv = [F.linear(t, s[f'{p}{n}_proj.weight']) for n, t in zip('qkv', (q, kv, kv))]
        return _lin(s, p + 'proj.', _attend(*qkv, heads))

    while (p := f'{c}decoder.{i}.') + 'norm1.weight' in s:  # TransformerDecoderLayer
        y = _ln(s, p + 'norm1.', x)
        x = x + attn(p + 'self_attn.', y, y)
        x = x + attn(p + 'cross_attn.', _ln(s, p + 'norm2.', x), mem)
        y = F.gelu(_lin(s, p + 'mlp.0.', _ln(s, p + 'norm3.', x)))  # nn.GELU (erf)
        x, i = x + _lin(s, p + 'mlp.3.', y), i + 1
    return _lin(s, c + 'out_proj.1.', _ln(s, c + 'out_proj.0.', x))


def released_forward(state: State, arch: str, images: Tensor, token_ids: Tensor,
                     **sizes) -> dict[str, Tensor | list[Tensor]]:
    """Eval-mode ``DenseCLIP.encode_decode(images)`` before its final resize (denseclip.py).

    images (B, 3, H, W); token_ids (K, 5) from ``released_tokenize``. Returns ``logits``
    (B, K, H/4, W/4), ``score_map`` (B, K, h, w), ``text`` (B, K, C) after the context-decoder
    update, ``global`` (B, C), ``dense`` (B, C, h, w) and ``levels`` (4 maps before the concat).
    """
    cfg = _sizes(arch, sizes)
    levels, g, z = _resnet(state, images) if arch == 'resnet' else _vit(state, images, cfg)
    b, c = z.shape[:2]
    # denseclip.py after_extract_feat: context_feature='attention'
    visual = torch.cat([g.reshape(b, c, 1), z.flatten(2)], 2).transpose(1, 2)  # (B, 1+hw, C)
    text = _text(state, token_ids, cfg).expand(b, -1, -1)
    text = text + state['gamma'] * _context_decoder(state, text, visual,
                                                    cfg['transformer_heads'])
    score = torch.einsum('bchw,bkc->bkhw', F.normalize(z, dim=1), F.normalize(text, dim=2))
    idx = 3 if arch == 'resnet' else 2  # configs: score_concat_index (3 default, 2 for ViT-B)
    x = list(levels)
    x[idx] = torch.cat([x[idx], score], 1)
    neck_in = [state[f'neck.lateral_convs.{i}.conv.weight'].shape[1] for i in range(4)]
    neck, head = _mmseg_neck_head(neck_in, cfg, state['decode_head.conv_seg.weight'].shape[0])
    neck.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith('neck.')})
    head.load_state_dict({k[12:]: v for k, v in state.items() if k.startswith('decode_head.')})
    neck, head = neck.to(images.device), head.to(images.device)
    logits = head(list(neck(x)))  # text_head=False in the released configs
    return {'logits': logits, 'score_map': score, 'text': text, 'global': g, 'dense': z,
            'levels': levels}


def released_identity_loss(score_map: Tensor, gt: Tensor, tau: float = 0.07,
                           ignore_index: int = 255) -> Tensor:
    """Identity-head loss: mmseg 0.19 ``BaseDecodeHead.losses(score_map / tau, gt)``.

    score_map (B, K, h, w); gt (B, H, W) or (B, 1, H, W) int64. CrossEntropyLoss(loss_weight
    0.4) as in configs/_base_/models/denseclip_r50.py. mmseg < 0.23 (no ``avg_non_ignore``,
    added by PR #1409) averages over ALL pixels: ignored ones count as zero loss.
    """
    gt = gt.reshape(gt.shape[0], *gt.shape[-2:]).long()
    logits = F.interpolate(score_map / tau, size=gt.shape[-2:], mode='bilinear',
                           align_corners=False)
    loss = F.cross_entropy(logits, gt, reduction='none', ignore_index=ignore_index)
    return 0.4 * loss.mean()
