# Adapting CLIP, ViT path (pals-ttic/adapting-CLIP@d2026f3 models/slic_vit.py, eval.py): region
# tokens at stride p/2 over SLIC superpixels (n_segments 100..600 step 50, compactness 50,
# sigma 0), exp(cos/T) averaged over the runs and min-max normalised, then the box search
# (alpha) on the 224 x 224 map. Defaults: ViT-B/16 on Flickr30k (eval.py: alpha 0.8, T 0.01).
model = dict(
    type='PhraseGroundingModel',
    backbone=dict(type='CLIPViT', model='ViT-B-16', pretrained='openai'),
    heatmap=dict(
        type='RegionTokenHeatmap',
        temperature=0.01,  # eval.py vit16 flickr
        n_segments=list(range(100, 601, 50)),
        compactness=50.0,
        sigma=0.0,
        upsample=2),
    alpha=0.8,  # eval.py vit16 flickr
    input_size=224,
    downsample=8)
