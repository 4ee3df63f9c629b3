from .clip_convnext import CLIPConvNeXt
from .clip_resnet import CLIPResNet
from .clip_vit import CLIPViT, DenseOutput
from .clip_vit_stages import CLIPViTStages
from .denseclip import CLIPResNetWithAttention, CLIPVisionTransformer, attention_pool
from .proxy import DINOProxy, SAMProxy

__all__ = ['CLIPViT', 'CLIPResNet', 'CLIPConvNeXt', 'CLIPViTStages', 'CLIPResNetWithAttention',
           'CLIPVisionTransformer', 'DenseOutput', 'DINOProxy', 'SAMProxy', 'attention_pool']
