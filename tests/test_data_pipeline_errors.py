"""Every bad input to the pipeline gets its own clear one-line error."""
import os

import numpy as np
import pytest
from PIL import Image

from stylegan_jax.data import prepared
from stylegan_jax.data.pipeline import dataset_info, make_pipeline
from stylegan_jax.data.sources import DatasetNotFoundError, check_prepared_dir

SOURCE = "synthetic_portraits/64x32_n8_t8_s0"


def _pipeline(source, resolution=(8, 4), **kwargs):
    return make_pipeline(source, resolution=resolution, batch_size=2, process_index=0,
                         process_count=1, **kwargs)


def _png(path, shape=(16, 8)):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.zeros(shape + (3,), np.uint8)).save(path)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def test_unknown_dataset_names_the_choices():
    with pytest.raises(DatasetNotFoundError, match=r"unknown dataset 'nope': choose one of synthetic_portraits, "
                                         r"synthetic_portraits/128x64.*folder:PATH"):
        dataset_info("nope")
    with pytest.raises(DatasetNotFoundError, match=r"did you mean synthetic_portraits"):
        dataset_info("synthetic_portrait")


def test_bad_synthetic_config_and_split(data_dir):
    with pytest.raises(ValueError, match=r"H = 2 W .*got 64x64"):
        dataset_info("synthetic_portraits/64x64", data_dir=data_dir)
    with pytest.raises(ValueError, match=r"bad synthetic_portraits config 'big'"):
        dataset_info("synthetic_portraits/big", data_dir=data_dir)
    with pytest.raises(ValueError, match=r"has no split 'validation': choose one of"):
        dataset_info(SOURCE, data_dir=data_dir, split="validation")


def test_unprepared_tfds_dataset_is_not_downloaded(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"'mnist' is not prepared in .*nothing downloads"
                                                   r".*: prepare it first \(`tfds build mnist"):
        dataset_info("mnist", data_dir=str(tmp_path))


@pytest.mark.parametrize("resolution, message", [
    ((128, 64), r"are 64x32, too small for the requested 128x64"),
    ((64, 64), r"too small for the requested 64x64"),
    ((48, 24), r"cannot area-downsample .* from 64x32 to 48x24: each axis must shrink by a power of 2"),
    ((64, 12), r"power of 2"),
    ((0, 4), r"resolution must be positive"),
])
def test_bad_resolutions(data_dir, resolution, message):
    with pytest.raises(ValueError, match=message):
        _pipeline(SOURCE, resolution, data_dir=data_dir)


def test_missing_empty_and_unreadable_folders(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"image folder .*missing does not exist: check the path after folder:"):
        dataset_info(f"folder:{tmp_path / 'missing'}")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"no images .* in folder"):
        dataset_info(f"folder:{tmp_path / 'empty'}")
    _png(str(tmp_path / "broken" / "good.png"))
    (tmp_path / "broken" / "bad.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match=r"cannot read image .*bad.png.*remove or replace"):
        dataset_info(f"folder:{tmp_path / 'broken'}")
    _png(str(tmp_path / "sizes" / "a.png"), (16, 8))
    _png(str(tmp_path / "sizes" / "b.png"), (32, 16))
    with pytest.raises(ValueError, match=r"differ in size: 16x8 \(a.png\), 32x16 \(b.png\)"):
        dataset_info(f"folder:{tmp_path / 'sizes'}")


@pytest.mark.parametrize("files, message", [
    (["top.png", "cats/a.png"], r"both at the top level \(top.png, ...\) and in sub-folders \(cats\)"),
    (["cats/a.png", "cats/b.png"], r"single class sub-folder 'cats'"),
    (["cats/a.png", "dogs/small/b.png"], r"nested deeper than one class sub-folder \(dogs/small/b.png\)"),
    (["cats/a.png", "dogs/b.png", "birds/"], r"class sub-folders birds of .* hold no images"),
])
def test_label_folders_that_do_not_match(tmp_path, files, message):
    for name in files:
        if name.endswith("/"):
            (tmp_path / name).mkdir()
        else:
            _png(str(tmp_path / name))
    with pytest.raises(ValueError, match=message):
        dataset_info(f"folder:{tmp_path}")


def test_other_bad_arguments(tmp_path, data_dir):
    _png(str(tmp_path / "images" / "a.png"))
    with pytest.raises(ValueError, match=r"has only the split 'train', not 'test'"):
        _pipeline(f"folder:{tmp_path / 'images'}", split="test")
    with pytest.raises(DatasetNotFoundError, match=r"holds no finished prepared dataset .*read as folder:"):
        _pipeline(str(tmp_path / "images"))
    with pytest.raises(DatasetNotFoundError, match=r"no directory .*nowhere"):
        _pipeline(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"exclude file .* does not exist"):
        _pipeline(SOURCE, data_dir=data_dir, exclude=str(tmp_path / "missing.txt"))
    with pytest.raises(ValueError, match=r"process_index 2 is not in \[0, process_count=2\)"):
        make_pipeline(SOURCE, resolution=(8, 4), batch_size=2, data_dir=data_dir, process_index=2,
                      process_count=2)


def test_dataset_not_found_error_is_one_line_of_what_and_fix():
    error = DatasetNotFoundError("no dataset at x", "make one")
    assert isinstance(error, FileNotFoundError)  # callers catching a missing file catch it too
    assert str(error) == "no dataset at x: make one"
    other = error.with_fix("run the tool")
    assert str(other) == "no dataset at x: run the tool" and other.looked_for == error.looked_for
    assert str(error) == "no dataset at x: make one"  # the original is unchanged


@pytest.mark.parametrize("source", ["data/rect_anime", "./data/rect_anime", "~/no/such/set"])
def test_missing_prepared_directory_names_the_absolute_path_and_the_tools(source, tmp_path,
                                                                           monkeypatch):
    """A relative path such as a config's default (data/rect_anime) is a directory, not a TFDS name."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = os.path.abspath(os.path.expanduser(source))
    with pytest.raises(DatasetNotFoundError) as error:
        dataset_info(source)
    assert error.value.looked_for == f"no prepared dataset at {os.path.expanduser(source)} (no directory {expected})"
    assert "python -m experiments.prepare_danbooru" in error.value.fix and "--out=DIR" in error.value.fix
    assert "\n" not in str(error.value)


def test_prepared_directory_check(tmp_path):
    (tmp_path / "unfinished").mkdir()
    with pytest.raises(DatasetNotFoundError, match=rf"unfinished holds no finished prepared dataset "
                                                   rf"\(no {prepared.INFO_FILE}\): run the preparation tool"):
        check_prepared_dir(str(tmp_path / "unfinished"))
    with pytest.raises(DatasetNotFoundError, match=r"no prepared dataset at .*nowhere"):
        check_prepared_dir(tmp_path / "nowhere")
    (tmp_path / "unfinished" / prepared.INFO_FILE).write_text("{}")
    check_prepared_dir(str(tmp_path / "unfinished"))  # a dataset.json is what marks it finished
