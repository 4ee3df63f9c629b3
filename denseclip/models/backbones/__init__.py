from .clip_resnet import CLIPResNet
from .clip_vit import CLIPViT, DenseOutput
from .proxy import DINOProxy, SAMProxy

__all__ = ['CLIPViT', 'CLIPResNet', 'DenseOutput', 'DINOProxy', 'SAMProxy']
