"""Train the offline toy CLIP on the shapes world and measure what its patches know.

The model is open_clip's own ``CLIP`` built from ``denseclip/toy/toy_clip.json`` (ViT with
16-pixel patches at 224, QuickGELU, OpenAI state-dict layout). Each step draws a batch of
scenes from ``denseclip/toy/world.py`` and cuts windows of g x g patches out of them at native
scale (g = 5, 7, 10 or 14, one g per step, 14 = the whole scene), each captioned with just the
classes it shows and encoded with its own patches' positional embeddings. The image embedding
is the mean of the patch tokens (``pool_type: avg`` in toy_clip.json).
The loss is CLIP's symmetric InfoNCE with every pair that names the same set of classes
counted as a positive (the toy world repeats captions within a batch, which plain CLIP would
push apart). Everything is seeded: data from the step index, weights from ``--seed``.

    python tools/train_toy_clip.py                  # train, evaluate, write the checkpoint
    python tools/train_toy_clip.py --eval-only      # evaluate denseclip/toy/toy_clip.safetensors
"""
import argparse
import json
import logging
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from safetensors.torch import load_file, save_file

from denseclip.engine.checkpoint import atomic_replace
from denseclip.toy.world import (STUFF, THINGS, TOY_CLASSES, TOY_TEMPLATES, describe,
                                 generate_scene, scene_seed)

logger = logging.getLogger('train_toy_clip')
TOY_DIR = Path(__file__).resolve().parents[1] / 'denseclip' / 'toy'
MEAN = torch.tensor(OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(OPENAI_DATASET_STD).view(1, 3, 1, 1)


def normalize(images: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 RGB -> (B, 3, H, W) float32 with OpenAI CLIP mean/std."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255
    return (x - MEAN) / STD


GRIDS = (5, 7, 10, 14)  # window sides in patches; 14 = the whole 224 scene
GRID_P = (0.25, 0.3, 0.25, 0.2)


def _window(scene, rng: np.random.Generator, g: int, patch: int = 16
            ) -> Tuple[np.ndarray, int, int, List[str]]:
    """A (g*patch)-pixel window on the patch grid, at native scale: around a random thing
    (half the time, if any) or anywhere. Returns the pixels, the window's first patch row and
    column, and the classes covering at least 3% of it (things in random order, then stuff)."""
    n = scene.label.shape[0] // patch
    if scene.objects and rng.random() < 0.5:
        obj = scene.objects[rng.integers(len(scene.objects))]
        gy, gx = np.array(obj.center) / patch - g / 2 + rng.uniform(-0.3, 0.3, 2) * g
        gy, gx = (int(np.clip(round(v), 0, n - g)) for v in (gy, gx))
    else:
        gy, gx = (int(v) for v in rng.integers(0, n - g + 1, 2))
    box = np.s_[gy * patch:(gy + g) * patch, gx * patch:(gx + g) * patch]
    frac = np.bincount(scene.label[box].ravel(), minlength=len(TOY_CLASSES)) / (g * patch) ** 2
    present = [TOY_CLASSES[i] for i in rng.permutation(len(THINGS)) if frac[i] >= 0.03]
    present += [c for c in STUFF if frac[TOY_CLASSES.index(c)] >= 0.03]
    return scene.image[box], gy, gx, present


class ToyBatches(torch.utils.data.Dataset):
    """Batch ``step`` of the training stream, a pure function of ``(seed, step)``.

    All windows of a batch have one side ``g`` drawn from :data:`GRIDS`; a batch holds about
    ``batch_size * 197`` tokens (``batch_size`` whole scenes), at most ``4 * batch_size``
    windows, eight from each scene.
    """

    def __init__(self, steps: int, batch_size: int, seed: int) -> None:
        self.steps, self.batch_size, self.seed = steps, batch_size, seed

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, step: int):
        rng = np.random.default_rng(scene_seed(self.seed + 1000, step))
        g = int(rng.choice(GRIDS, p=GRID_P))
        n = min(4 * self.batch_size, self.batch_size * 197 // (g * g + 1))
        images, gy, gx, captions, keys = [], [], [], [], []
        while len(images) < n:
            scene = generate_scene(int(rng.integers(2**62)), 224,
                                   num_objects=int(rng.integers(0, 6)), radius=(0.06, 0.22))
            for _ in range(1 if g == 14 else 8):
                img, y, x, present = _window(scene, rng, g)
                images.append(img)
                gy.append(y)
                gx.append(x)
                captions.append(scene.caption if g == 14 else describe(present, rng))
                keys.append(frozenset(scene.classes if g == 14 else present))
        return (normalize(np.stack(images[:n])), torch.tensor(gy[:n]), torch.tensor(gx[:n]),
                captions[:n], keys[:n])


def encode_windows(visual, images: torch.Tensor, gy: torch.Tensor,
                   gx: torch.Tensor) -> torch.Tensor:
    """Image embeddings (B, D) of windows (B, 3, g*p, g*p) whose first patch is at (gy, gx) of
    the full grid: ``visual(images)`` with the positional embeddings of those patches (equal
    to it when the window is the whole image)."""
    x = visual.conv1(images)  # (B, W, g, g)
    B, W, g, _ = x.shape
    x = x.flatten(2).transpose(1, 2)  # (B, g*g, W)
    pos = visual.positional_embedding  # (1+n*n, W)
    n = math.isqrt(pos.shape[0] - 1)
    rows = (gy[:, None] + torch.arange(g))[:, :, None]  # (B, g, 1)
    cols = (gx[:, None] + torch.arange(g))[:, None, :]  # (B, 1, g)
    x = x + pos[1:].view(n, n, W)[rows, cols].reshape(B, g * g, W)
    cls = (visual.class_embedding + pos[0]).view(1, 1, W).expand(B, 1, W)
    x = visual.transformer(visual.ln_pre(torch.cat([cls, x], 1)))  # (B, 1+g*g, W)
    # toy_clip.json pools by averaging the patch tokens (open_clip pool_type='avg'): every patch
    # is trained towards the caption, which is what makes the toy model's patches localise.
    # As open_clip's VisionTransformer._pool: ln_post first, then the pooling.
    x = visual.ln_post(x)
    pooled = x[:, 1:].mean(1) if visual.pool_type == 'avg' else x[:, 0]
    return pooled @ visual.proj


def encode_captions(model, tokens: torch.Tensor) -> torch.Tensor:
    """``model.encode_text`` on tokens cut after the longest caption's end token: the text
    tower is causal, so the end token's features do not change and the cut saves most of the
    77-token context."""
    t = tokens[:, :int(tokens.argmax(-1).max()) + 1]  # (B, T)
    x = model.token_embedding(t) + model.positional_embedding[:t.shape[1]]
    x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:t.shape[1], :t.shape[1]]))
    return x[torch.arange(len(t)), t.argmax(-1)] @ model.text_projection


def multi_positive_clip_loss(img: torch.Tensor, txt: torch.Tensor, scale: torch.Tensor,
                             keys: List[frozenset]) -> torch.Tensor:
    """Symmetric InfoNCE on (B, D) normalised embeddings; pairs with equal keys are positives,
    sharing the target mass equally."""
    ids = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    k = torch.tensor([ids[key] for key in keys])
    target = (k[:, None] == k[None, :]).float()  # (B, B), symmetric
    target = target / target.sum(1, keepdim=True)
    logits = scale * img @ txt.t()  # (B, B)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


def build_model(config: Path) -> open_clip.model.CLIP:
    return open_clip.model.CLIP(**json.loads(config.read_text()))


@torch.no_grad()
def class_embeddings(model, tokenizer, names, templates) -> torch.Tensor:
    """(K, D) L2-normalised text embeddings, averaged over templates."""
    emb = [F.normalize(model.encode_text(tokenizer([t.format(n) for t in templates])), dim=-1)
           .mean(0) for n in names]
    return F.normalize(torch.stack(emb), dim=-1)


@torch.no_grad()
def dense_features(visual, images: torch.Tensor, method: str) -> torch.Tensor:
    """(B, 3, H, W) -> (B, D, h, w) patch embeddings; ``maskclip`` replaces the last block's
    attention by its value path (Zhou et al., ECCV 2022), ``vanilla`` keeps it."""
    x = visual.conv1(images)  # (B, W, h, w)
    B, W, h, w = x.shape
    x = x.flatten(2).transpose(1, 2)  # (B, N, W)
    cls = visual.class_embedding.view(1, 1, W).expand(B, 1, W)
    x = visual.ln_pre(torch.cat([cls, x], 1) + visual.positional_embedding)  # (B, 1+N, W)
    blocks = visual.transformer.resblocks
    for blk in blocks[:-1]:
        x = blk(x)
    last = blocks[-1]
    if method == 'vanilla':
        x = last(x)
    elif method == 'maskclip':
        y = last.ln_1(x)
        v = F.linear(y, last.attn.in_proj_weight, last.attn.in_proj_bias).chunk(3, -1)[2]
        x = x + last.attn.out_proj(v)
        x = x + last.mlp(last.ln_2(x))
    else:
        raise ValueError(f"method={method!r}; expected 'vanilla' or 'maskclip'")
    f = visual.ln_post(x[:, 1:]) @ visual.proj  # (B, N, D)
    return f.transpose(1, 2).reshape(B, -1, h, w)  # (B, D, h, w)


@torch.no_grad()
def evaluate(model, num_scenes: int = 50, seed: int = 0,
             templates=TOY_TEMPLATES) -> Dict[str, object]:
    """Zero-shot top-1 on single-thing scenes (among things) and dense mIoU of the vanilla and
    MaskCLIP paths on ``num_scenes`` validation scenes (``write_split(seed=seed)``'s scenes)."""
    model.eval()
    tok = open_clip.get_tokenizer('ViT-B-16')
    text = class_embeddings(model, tok, TOY_CLASSES, templates)  # (K, D)
    singles = [generate_scene(scene_seed(seed + 500, i), num_objects=1) for i in range(200)]
    img = F.normalize(model.encode_image(normalize(np.stack([s.image for s in singles]))), dim=-1)
    pred = (img @ text[:len(THINGS)].t()).argmax(1)
    truth = torch.tensor([s.objects[0].label for s in singles])
    out: Dict[str, object] = {'zero_shot_top1': (pred == truth).float().mean().item()}
    scenes = [generate_scene(scene_seed(seed, i)) for i in range(num_scenes)]
    images = normalize(np.stack([s.image for s in scenes]))
    labels = torch.from_numpy(np.stack([s.label for s in scenes])).long()
    K = len(TOY_CLASSES)
    for method in ('vanilla', 'maskclip'):
        feats = F.normalize(dense_features(model.visual, images, method), dim=1)
        logits = torch.einsum('bdhw,kd->bkhw', feats, text)  # (B, K, h, w)
        logits = F.interpolate(logits, size=labels.shape[-2:], mode='bilinear')
        seg = logits.argmax(1)
        conf = torch.bincount(labels.flatten() * K + seg.flatten(), minlength=K * K).view(K, K)
        inter = conf.diag().float()
        union = conf.sum(0) + conf.sum(1) - conf.diag()
        iou = inter / union.clamp(min=1)
        valid = conf.sum(1) > 0
        out[f'miou_{method}'] = iou[valid].mean().item()
        out[f'iou_{method}'] = {c: round(iou[i].item(), 3) for i, c in enumerate(TOY_CLASSES)}
        out[f'acc_{method}'] = (inter.sum() / conf.sum()).item()
    return out


def save_checkpoint(model, path: Path) -> None:
    """fp16 safetensors of the full state dict, written atomically."""
    state = {k: v.detach().half().contiguous() for k, v in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(suffix='.safetensors.tmp', dir=path.parent)
    os.close(fd)
    try:
        save_file(state, tmp, metadata={'format': 'pt', 'config': 'toy_clip.json'})
        atomic_replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def train(args: argparse.Namespace) -> open_clip.model.CLIP:
    torch.manual_seed(args.seed)
    model = build_model(args.config)
    with torch.no_grad():
        # Deviation from CLIP's init: a stronger last attention pools most of the image into the
        # class token there, so each patch's value path lands in the joint space (without it
        # the patch residual, left in no particular direction, swamped MaskCLIP's v-path).
        model.visual.transformer.resblocks[-1].attn.out_proj.weight.mul_(args.last_attn_gain)
    tok = open_clip.get_tokenizer('ViT-B-16')
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': args.weight_decay},
                             {'params': rest, 'weight_decay': 0.0}],
                            lr=args.lr, betas=(0.9, 0.98), eps=1e-6)
    warmup = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1, (s + 1) / warmup) * 0.5 * (
        1 + math.cos(math.pi * min(1.0, s / args.steps))))
    loader = torch.utils.data.DataLoader(
        ToyBatches(args.steps, args.batch_size, args.seed), batch_size=None,
        num_workers=args.workers, collate_fn=lambda b: b)
    model.train()
    t0 = time.time()
    for step, (images, gy, gx, captions, keys) in enumerate(loader):
        img = F.normalize(encode_windows(model.visual, images, gy, gx), dim=-1)
        txt = F.normalize(encode_captions(model, tok(captions)), dim=-1)
        scale = model.logit_scale.exp()
        loss = multi_positive_clip_loss(img, txt, scale, keys)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if step % 25 == 0 or step == args.steps - 1:
            logger.info('step %d/%d loss %.4f scale %.1f lr %.2e %.0fs', step, args.steps,
                        loss.item(), scale.item(), sched.get_last_lr()[0], time.time() - t0)
    return model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--config', type=Path, default=TOY_DIR / 'toy_clip.json')
    p.add_argument('--out', type=Path, default=TOY_DIR / 'toy_clip.safetensors')
    p.add_argument('--steps', type=int, default=1000)
    p.add_argument('--batch-size', type=int, default=48)
    p.add_argument('--lr', type=float, default=1.5e-3)
    p.add_argument('--weight-decay', type=float, default=0.05)
    p.add_argument('--last-attn-gain', type=float, default=4.0,
                   help='initial scale of the last vision block attention output')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--workers', type=int, default=1, help='data-generating processes')
    p.add_argument('--eval-scenes', type=int, default=50)
    p.add_argument('--eval-only', action='store_true', help='evaluate --out, do not train')
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')
    torch.set_num_threads(args.threads)
    if args.eval_only:
        model = build_model(args.config)
        model.load_state_dict({k: v.float() for k, v in load_file(args.out).items()})
    else:
        t0 = time.time()
        model = train(args)
        save_checkpoint(model, args.out)
        logger.info('trained in %.0fs; wrote %s (%.1f MB)', time.time() - t0, args.out,
                    args.out.stat().st_size / 2**20)
    for key, value in evaluate(model, args.eval_scenes).items():
        logger.info('%s: %s', key, value)


if __name__ == '__main__':
    main()
