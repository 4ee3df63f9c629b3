from .clip_resnet import CLIPResNet
from .clip_vit import CLIPViT, DenseOutput

__all__ = ['CLIPViT', 'CLIPResNet', 'DenseOutput']
