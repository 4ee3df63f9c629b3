# ZSGNet Flickr S1 (flickr30k_c1 test): phrases whose noun is unseen.
_base_ = ['./grounding_zsgnet.py']
test_dataloader = dict(dataset=dict(
    ann_file='ds_csv_ann/flickr30k_c1/csv_dir/test.csv',
    data_prefix=dict(img_path='flickr/flickr30k-images')))
