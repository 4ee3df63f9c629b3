# PixelCLIP, OpenCLIP ConvNeXt-B (configs/pixelclip_convnext_base.yaml over pixelclip_vit_base.yaml,
# cvlab-kaist/PixelCLIP@42f5c9c): convnext_base_w_320 with laion_aesthetic_s13b_b82k, dense
# features = trunk.forward_features -> head.norm -> head per location (CLIPConvNeXt.dense_head),
# the whole tower trained, eps 1, 640 x 640 input. The rest is the ViT-B/16 base's.
_base_ = ['./pixelclip_vit-b16.py']
model = dict(
    backbone=dict(
        _delete_=True,  # another backbone type: CLIPViT's dense/pos_interp keys do not apply
        type='CLIPConvNeXt',
        model='convnext_base_w_320',
        pretrained='laion_aesthetic_s13b_b82k'),  # pixelclip_predictor.py
    clip_resolution=(640, 640),  # CLIP_RESOLUTION (640, 640)
    visual_finetune='full',  # CLIP_FINETUNE "full"
    decode_head=dict(eps=1.0))  # MODEL.EPS 1.0
