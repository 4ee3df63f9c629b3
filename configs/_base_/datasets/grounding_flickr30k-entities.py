# Flickr30k Entities test, one row per phrase (union of its boxes), written by
# tools/dataset_converters/flickr30k_entities.py.
_base_ = ['./grounding_zsgnet.py']
test_dataloader = dict(dataset=dict(
    type='Flickr30kEntitiesDataset',
    ann_file='flickr30k_entities_test.csv',
    data_prefix=dict(img_path='flickr/flickr30k-images')))
