"""The class-name files: unchanged since copied (md5 pinned in their README), one class per
dataset class under each harness's separator, and the quirks the protocol depends on."""
import hashlib
import re
from pathlib import Path

import pytest

from denseclip.models.text import Vocabulary
from denseclip.registry import DATASETS
from denseclip.toy.world import TOY_CLASSES

VOCAB = Path(__file__).resolve().parents[2] / 'denseclip' / 'datasets' / 'vocabularies'
PINNED = dict(re.findall(r'^\| `(\S+\.txt)` \| ([0-9a-f]{32}) \|$',
                         (VOCAB / 'README.md').read_text(), flags=re.M))
DATASET = {
    'voc21': 'PascalVOCDataset', 'voc20': 'PascalVOC20Dataset',
    'context60': 'PascalContextDataset', 'context59': 'PascalContextDataset59',
    'coco_object': 'COCOObjectDataset', 'coco_stuff': 'COCOStuffDataset',
    'city_scapes': 'CityscapesDataset', 'ade20k': 'ADE20KDataset',
    'toy_world': 'ToyWorldDataset',
    # CAT-Seg's json names (catseg/)
    'ade150': 'ADE20KDataset', 'ade847': 'ADE20K847Dataset', 'pc59': 'PascalContextDataset59',
    'pc459': 'PascalContext459Dataset', 'voc20b': 'PascalVOCDataset',
}
SEP = {'sclip': ', ', 'clearclip': ',', 'proxyclip': '; ', 'maskclip': ', ', 'toy': ', ',
       'cliptrase': ', ', 'clip_dinoiser': ', ', 'catseg': ', ', 'corrclip': '; ',
       'maft_plus': ','}
FILES = sorted(p.relative_to(VOCAB).as_posix() for p in VOCAB.glob('*/*.txt'))


def test_every_file_is_pinned():
    assert sorted(PINNED) == FILES


@pytest.mark.parametrize('name', FILES)
def test_file_unchanged(name):
    assert hashlib.md5((VOCAB / name).read_bytes()).hexdigest() == PINNED[name]


@pytest.mark.parametrize('name', FILES)
def test_one_class_per_dataset_class(name):
    harness, stem = name.split('/')
    vocab = Vocabulary.from_file(VOCAB / name, sep=SEP[harness])
    classes = DATASETS.get(DATASET[stem[len('cls_'):-len('.txt')]]).METAINFO['classes']
    assert vocab.num_classes == len(classes)


def test_background_and_person_synonyms():
    voc21 = Vocabulary.from_file(VOCAB / 'sclip' / 'cls_voc21.txt', sep=', ')
    assert len(voc21.classes[0]) == 26 and voc21.classes[0][:3] == ('sky', 'wall', 'tree')
    assert voc21.classes[15][0] == 'person' and len(voc21.classes[15]) == 7
    obj = Vocabulary.from_file(VOCAB / 'sclip' / 'cls_coco_object.txt', sep=', ')
    assert obj.classes[1][-1] == 'body' and len(obj.classes[1]) == 8
    proxy = Vocabulary.from_file(VOCAB / 'proxyclip' / 'cls_coco_object.txt', sep='; ')
    assert len(proxy.classes[0]) == 17
    clear = Vocabulary.from_file(VOCAB / 'clearclip' / 'cls_voc21.txt', sep=',')
    assert clear.classes[0] == ('background', ) and clear.classes[20] == ('tvmonitor', )


def test_cliptrase_word_lists():
    """configs/dataset_cfg.py's lists as written out, quirks kept (README)."""
    voc21 = Vocabulary.from_file(VOCAB / 'cliptrase' / 'cls_voc21.txt', sep=', ')
    background = voc21.classes[0]
    assert len(background) == 33 and background[:4] == ('background', 'sky', 'wall', 'white')
    assert background.count('bed') == 2 and 'beachhill' in background and 'beach' not in background
    assert voc21.classes[20] == ('tv', ) and voc21.classes[11] == ('diningtable', )
    obj = Vocabulary.from_file(VOCAB / 'cliptrase' / 'cls_coco_object.txt', sep=', ')
    assert len(obj.classes[0]) == 107 and obj.classes[0][0] == 'textile'
    assert 'background' not in obj.classes[0] and 'wall-brick' in obj.classes[0]
    assert obj.classes[5] == ('airplane', ) and obj.classes[10] == ('traffic light', )
    pc60 = Vocabulary.from_file(VOCAB / 'cliptrase' / 'cls_context60.txt', sep=', ')
    assert pc60.classes[0] == ('background', ) and pc60.classes[50] == ('diningtable', )


def test_clip_dinoiser_class_names():
    """The CLASSES of clip_dinoiser's segmentation/datasets, one name a line."""
    voc21 = Vocabulary.from_file(VOCAB / 'clip_dinoiser' / 'cls_voc21.txt').class_names
    assert voc21[0] == 'background' and voc21[11] == 'dining table' and voc21[20] == 'tvmonitor'
    obj = Vocabulary.from_file(VOCAB / 'clip_dinoiser' / 'cls_coco_object.txt').class_names
    assert obj[0] == 'background' and obj[5] == 'aeroplane'
    stuff = Vocabulary.from_file(VOCAB / 'clip_dinoiser' / 'cls_coco_stuff.txt').class_names
    assert stuff == list(DATASETS.get('COCOStuffDataset').METAINFO['classes'])


WRITTEN_OUT = [name for name in FILES if name.startswith(('cliptrase/', 'clip_dinoiser/'))]


@pytest.mark.parametrize('name', WRITTEN_OUT)
def test_written_out_lists_have_synonyms_on_class_0_only(name):
    """Only background words are synonyms: no name in those lists contains the separator."""
    vocab = Vocabulary.from_file(VOCAB / name, sep=SEP[name.split('/')[0]])
    assert all(len(names) == 1 for names in vocab.classes[1:])


def test_concatenated_names_kept():
    city = Vocabulary.from_file(VOCAB / 'sclip' / 'cls_city_scapes.txt').class_names
    assert 'trafficlight' in city and 'traffic light' not in city
    ade = Vocabulary.from_file(VOCAB / 'sclip' / 'cls_ade20k.txt').class_names
    assert 'chestofdrawers' in ade and 'pooltable' in ade


def test_toy_names_are_the_toy_classes():
    assert Vocabulary.from_file(VOCAB / 'toy' / 'cls_toy_world.txt').class_names == list(
        TOY_CLASSES)


def _first_names(lines) -> list[str]:
    """First name of each class, spaces, hyphens and case aside."""
    return [line.split(', ')[0].replace(' ', '').replace('-', '').lower() for line in lines]


@pytest.mark.parametrize('stem,dataset', [
    ('ade150', 'ADE20KDataset'), ('pc59', 'PascalContextDataset59'),
    ('voc20', 'PascalVOC20Dataset'), ('coco_stuff', 'COCOStuffDataset')])
def test_catseg_lists_follow_the_dataset_label_order(stem, dataset):
    """The released json order is the mmseg dataset's label order (README, catseg table)."""
    names = _first_names((VOCAB / 'catseg' / f'cls_{stem}.txt').read_text().splitlines())
    classes = _first_names(DATASETS.get(dataset).METAINFO['classes'])
    if stem == 'pc59':  # the release's name for mmseg's 'table'
        assert names[49] == 'diningtable' and classes[49] == 'table'
        names[49] = 'table'
    assert names == classes


@pytest.mark.parametrize('stem,dataset', [('ade847', 'ADE20K847Dataset'),
                                          ('pc459', 'PascalContext459Dataset')])
def test_catseg_many_class_datasets_take_their_classes_from_the_files(stem, dataset):
    lines = (VOCAB / 'catseg' / f'cls_{stem}.txt').read_text().splitlines()
    assert list(DATASETS.get(dataset).METAINFO['classes']) == lines


def test_catseg_voc20b_puts_background_first():
    """voc20b.json (20 VOC classes, then 39 names the release maps to background) in VOC21's
    label order: background (label 0) = those 39 names."""
    lines = (VOCAB / 'catseg' / 'cls_voc20b.txt').read_text().splitlines()
    voc20 = (VOCAB / 'catseg' / 'cls_voc20.txt').read_text().splitlines()
    background = lines[0].split(', ')
    assert lines[1:] == voc20 and len(background) == 39
    assert background[0] == 'bag' and background[-1] == 'wood' and 'person' not in background
