# Adapting CLIP, ResNet path (pals-ttic/adapting-CLIP@d2026f3 models/resnet_high_res.py,
# spatial_clip/resnet/): CLIP ResNet with its strides turned into dilations (stride 1), MaskCLIP's
# v->c projection of the attention pool at every pixel, image padded by 64 px, exp(cos/T), box
# search. Defaults: RN50 on Flickr30k (eval.py rn50: alpha 0.7, T 0.03).
model = dict(
    type='PhraseGroundingModel',
    backbone=dict(type='CLIPResNet', model='RN50', pretrained='openai'),
    heatmap=dict(type='DenseHeatmap', temperature=0.03, stride_one=True, pad=64),
    alpha=0.7,
    input_size=224,
    downsample=8)
