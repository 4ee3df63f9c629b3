# PixelCLIP, OpenCLIP ConvNeXt-B (convnext_base_w_320, laion_aesthetic_s13b_b82k), trained on
# SA-1B images with DINO k-means masks (16 per image), 10k iterations, batch 48; released:
#   sh run.sh configs/pixelclip_convnext_base.yaml 4 output/ MODEL.DINO True
#   tools/dist_train.sh configs/pixelclip/pixelclip_convnext-b_dino.py 4
_base_ = [
    '../_base_/models/pixelclip_convnext-b.py',
    '../_base_/datasets/sa1b_images.py',
    '../_base_/schedules/pixelclip_10k.py',
]
# MODEL.DINO True: 16 k-means clusters of DINO ViT-S/16 patch features per image (torch.hub
# facebookresearch/dino dino_vits16 = timm vit_small_patch16_224.dino) are the masks.
model = dict(
    mask_source=dict(
        type='DINOKMeansMasks',
        dino=dict(type='DINOProxy', model='vit_small_patch16_224.dino', pretrained='timm'),
        num_clusters=16))
