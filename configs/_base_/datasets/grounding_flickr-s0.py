# ZSGNet Flickr S0 (flickr30k_c0 test): phrases whose noun is seen in training.
_base_ = ['./grounding_zsgnet.py']
test_dataloader = dict(dataset=dict(
    ann_file='ds_csv_ann/flickr30k_c0/csv_dir/test.csv',
    data_prefix=dict(img_path='flickr/flickr30k-images')))
