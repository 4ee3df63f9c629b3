"""atomic_write: the whole new file or the old one, never a partial one, nothing left over."""
import os

import pytest

from denseclip.engine.checkpoint import atomic_write


def test_writes_the_file_in_a_new_folder(tmp_path):
    path = atomic_write(tmp_path / 'a' / 'b.json', lambda tmp: open(tmp, 'w').write('{}'))
    assert path.read_text() == '{}' and os.listdir(path.parent) == ['b.json']


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / 'b.json'
    path.write_text('old')

    def fail(tmp):
        with open(tmp, 'w') as f:
            f.write('half')
        raise RuntimeError('disk full')

    with pytest.raises(RuntimeError, match='disk full'):
        atomic_write(path, fail)
    assert path.read_text() == 'old' and os.listdir(tmp_path) == ['b.json']


def test_replacing_keeps_the_files_mode(tmp_path):
    path = tmp_path / 'b.json'
    path.write_text('old')
    path.chmod(0o640)
    atomic_write(path, lambda tmp: open(tmp, 'w').write('new'))
    assert path.read_text() == 'new' and path.stat().st_mode & 0o777 == 0o640
