import pytest
import torch

from denseclip.models.text import Vocabulary


def test_from_list_mixes_names_and_synonyms():
    vocab = Vocabulary.from_list(['road', 'car', ['person', 'pedestrian']])
    assert vocab.classes == (('road',), ('car',), ('person', 'pedestrian'))
    assert vocab.num_classes == 3
    assert vocab.class_names == ['road', 'car', 'person']
    assert vocab.queries == ['road', 'car', 'person', 'pedestrian']
    assert torch.equal(vocab.query_to_class, torch.tensor([0, 1, 2, 2]))
    assert vocab.query_to_class.dtype == torch.long


def test_names_kept_exactly():
    vocab = Vocabulary.from_list(['TrafficLight', ' leading', 'trailing '])
    assert vocab.queries == ['TrafficLight', ' leading', 'trailing ']


def _write(tmp_path, text):
    path = tmp_path / 'names.txt'
    path.write_bytes(text.encode('utf-8'))
    return path


def test_file_sclip_separator(tmp_path):
    # SCLIP / NACLIP style: ', ' between synonyms; concatenated names kept as they are
    path = _write(tmp_path, 'sky, wall, tree\nperson, person in shirt\ntrafficlight\n')
    vocab = Vocabulary.from_file(path)
    assert vocab.classes == (('sky', 'wall', 'tree'), ('person', 'person in shirt'),
                             ('trafficlight',))
    assert torch.equal(vocab.query_to_class, torch.tensor([0, 0, 0, 1, 1, 2]))


def test_file_clearclip_separator_keeps_leading_spaces(tmp_path):
    path = _write(tmp_path, 'background\nperson, person in shirt\r\ncar')
    vocab = Vocabulary.from_file(str(path), sep=',')
    assert vocab.classes == (('background',), ('person', ' person in shirt'), ('car',))


def test_file_proxyclip_separator(tmp_path):
    path = _write(tmp_path, 'sky; wall; tree\naeroplane\n')
    vocab = Vocabulary.from_file(path, sep='; ')
    assert vocab.classes == (('sky', 'wall', 'tree'), ('aeroplane',))
    # the same file read with the default separator is one name per line, '; ' included
    assert Vocabulary.from_file(path).class_names == ['sky; wall; tree', 'aeroplane']


def test_file_trailing_blank_lines_ignored(tmp_path):
    path = _write(tmp_path, 'a\nb\n\n  \n')
    assert Vocabulary.from_file(path).class_names == ['a', 'b']


def test_file_errors(tmp_path):
    missing = tmp_path / 'nope.txt'
    with pytest.raises(FileNotFoundError, match='nope.txt'):
        Vocabulary.from_file(missing)
    with pytest.raises(ValueError, match=r'names.txt:2: empty name'):
        Vocabulary.from_file(_write(tmp_path, 'a\n\nb\n'))
    with pytest.raises(ValueError, match=r'names.txt:1: empty name'):
        Vocabulary.from_file(_write(tmp_path, 'a, , b\n'))
    with pytest.raises(ValueError, match='has no class names'):
        Vocabulary.from_file(_write(tmp_path, '\n\n'))
    with pytest.raises(ValueError, match=r"duplicate class 'a' at positions 0 and 2"):
        Vocabulary.from_file(_write(tmp_path, 'a\nb\na\n'))
    with pytest.raises(ValueError, match='empty synonym separator'):
        Vocabulary.from_file(_write(tmp_path, 'a\n'), sep='')


def test_from_string():
    vocab = Vocabulary.from_string('person;pedestrian,car , traffic light ; signal')
    assert vocab.classes == (('person', 'pedestrian'), ('car',), ('traffic light', 'signal'))
    assert torch.equal(vocab.query_to_class, torch.tensor([0, 0, 1, 2, 2]))


@pytest.mark.parametrize('text', ['a,,b', 'a,', 'a;;b', ''])
def test_from_string_empty_name(text):
    with pytest.raises(ValueError, match='empty name'):
        Vocabulary.from_string(text)


def test_validation_errors():
    with pytest.raises(ValueError, match='no classes given'):
        Vocabulary.from_list([])
    with pytest.raises(ValueError, match=r"class 1 \('car', ' '\) has an empty name"):
        Vocabulary.from_list(['road', ['car', ' ']])
    with pytest.raises(ValueError, match='class 0 is'):
        Vocabulary.from_list([[]])
    with pytest.raises(ValueError, match="duplicate class 'car' at positions 0 and 1"):
        Vocabulary.from_list(['car', 'car'])
    with pytest.raises(TypeError, match='class 1 is int 5; expected a name or a list'):
        Vocabulary.from_list(['road', 5])
    with pytest.raises(TypeError, match='names must be str'):
        Vocabulary.from_list(['road', ['car', 5]])
    with pytest.raises(TypeError, match='use Vocabulary.from_string'):
        Vocabulary.from_list('road,car')
    with pytest.raises(TypeError, match='expected a str'):
        Vocabulary.from_string(['road'])


def test_classes_may_share_a_first_name():
    """ADE20K-847 has two 'screen's (and 8 more such pairs), told apart by their synonyms."""
    vocab = Vocabulary.from_list([['screen', 'crt screen'], ['screen', 'projection screen']])
    assert vocab.class_names == ['screen', 'screen']
    assert torch.equal(vocab.query_to_class, torch.tensor([0, 0, 1, 1]))


def test_a_name_of_two_classes_is_refused_by_the_api_and_the_demo_alike(tiny_vit):
    """One rule for typed vocabularies: the API's classes= and the demos' --classes."""
    import sys
    from pathlib import Path

    import numpy as np

    import denseclip

    shared = [['person', 'rider'], 'car', ['bike', 'rider']]
    with pytest.raises(ValueError, match=r"duplicate class name 'rider' \(classes 1 and 3\)"):
        Vocabulary.from_list(shared).require_distinct_names()
    config, weights, _ = tiny_vit
    seg = denseclip.OpenVocabSegmenter('sclip', config, weights, short_side=32)
    with pytest.raises(ValueError, match=r"duplicate class name 'rider' \(classes 1 and 3\)"):
        seg(np.zeros((32, 32, 3), np.uint8), classes=shared)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'demo'))
    from demo_utils import parse_vocabulary
    with pytest.raises(ValueError, match=r"duplicate class name 'rider' \(classes 1 and 3\)"):
        parse_vocabulary('person;rider,car,bike;rider')
    # distinct names pass and come back unchanged; released name files keep duplicates
    ok = Vocabulary.from_list(['person', ['bike', 'bicycle']])
    assert ok.require_distinct_names() is ok
    assert Vocabulary.from_list([['screen', 'crt'], ['screen', 'monitor']]).num_classes == 2
