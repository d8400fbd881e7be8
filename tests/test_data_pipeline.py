"""make_pipeline / dataset_info over TFDS, image folders and prepared datasets."""
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from stylegan_jax.data import synthetic_portraits as sp
from stylegan_jax.data.pipeline import dataset_info, make_pipeline
from stylegan_jax.data.prepared import PreparedWriter

SOURCE = "synthetic_portraits/64x32_n64_t16_s0"  # 64 train + 16 test portraits, seed 0


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def _batches(source, data_dir=None, **kwargs):
    kwargs = dict(dict(shuffle=False, repeat=False, drop_remainder=False, process_index=0,
                       process_count=1), **kwargs)
    return list(make_pipeline(source, data_dir=data_dir, **kwargs))


def _concat(batches, name):
    return np.concatenate([b[name] for b in batches])


def _block_mean(images, factor_h, factor_w):
    """Independent area downsampling: mean over factor_h x factor_w blocks via numpy reshape."""
    n, height, width, c = images.shape
    return images.reshape(n, height // factor_h, factor_h, width // factor_w, factor_w, c).mean(axis=(2, 4))


def _write_png(path, image):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(image).save(path)


def _random_images(num, shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(num,) + shape + (3,), dtype=np.uint8)


@pytest.mark.parametrize("resolution", [(64, 32), (32, 16), (16, 8), (4, 2), (16, 16), (8, 8)])
def test_tfds_batches_are_block_means_of_the_drawn_portraits(data_dir, resolution):
    batches = _batches(SOURCE, data_dir, resolution=resolution, batch_size=16, drop_remainder=True)
    assert len(batches) == 4
    for batch in batches:
        assert batch["image"].shape == (16,) + resolution + (3,) and batch["image"].dtype == np.float32
        assert batch["label"].shape == (16, sp.LABEL_SPEC.dim) and batch["key"].shape == (16,)
        assert batch["image"].min() >= -1.0 and batch["image"].max() <= 1.0
    keys = _concat(batches, "key")
    indices = [int(key.decode().split("-")[1]) for key in keys]
    assert sorted(indices) == list(range(64))
    drawn = sp.generate(0, indices, (64, 32))
    factors = (64 // resolution[0], 32 // resolution[1])
    expected = _block_mean(drawn["image"].astype(np.float64), *factors) / 127.5 - 1.0
    np.testing.assert_allclose(_concat(batches, "image"), expected, atol=1e-5)
    np.testing.assert_array_equal(_concat(batches, "label"), drawn["label"])


def test_dataset_info_and_test_split(data_dir):
    info = dataset_info(SOURCE, data_dir=data_dir)
    assert info == {"image_shape": (64, 32), "label_spec": sp.LABEL_SPEC, "num_examples": 64}
    assert dataset_info(SOURCE, data_dir=data_dir, split="test")["num_examples"] == 16
    keys = _concat(_batches(SOURCE, data_dir, split="test", resolution=(8, 4), batch_size=5), "key")
    assert sorted(int(k.decode().split("-")[1]) for k in keys) == list(range(64, 80))


def test_shuffle_is_a_seeded_permutation_and_repeat_continues(data_dir):
    def order(seed):
        return list(_concat(_batches(SOURCE, data_dir, resolution=(8, 4), batch_size=8, shuffle=True,
                                     seed=seed), "key"))
    assert sorted(order(0)) == sorted(_concat(_batches(SOURCE, data_dir, resolution=(8, 4),
                                                       batch_size=8), "key"))
    assert order(0) == order(0) and order(0) != order(1)
    forever = make_pipeline(SOURCE, data_dir=data_dir, resolution=(8, 4), batch_size=24,
                            process_index=0, process_count=1)
    keys = np.concatenate([next(forever)["key"] for _ in range(8)])  # 192 > 64: three epochs
    assert len(set(keys)) == 64


def test_flip_mirrors_about_half_of_the_images(data_dir):
    plain = _concat(_batches(SOURCE, data_dir, resolution=(32, 16), batch_size=16), "image")
    flipped = _concat(_batches(SOURCE, data_dir, resolution=(32, 16), batch_size=16, flip=True), "image")
    mirrored = np.array([np.array_equal(f, p[:, ::-1]) for f, p in zip(flipped, plain)])
    unchanged = np.array([np.array_equal(f, p) for f, p in zip(flipped, plain)])
    assert np.all(mirrored | unchanged) and 16 <= mirrored.sum() <= 48
    again = _concat(_batches(SOURCE, data_dir, resolution=(32, 16), batch_size=16, flip=True), "image")
    np.testing.assert_array_equal(again, flipped)


def _labelled_folder(root, shape=(16, 8)):
    images = {"cats": _random_images(5, shape, 1), "dogs": _random_images(4, shape, 2)}
    for name, stack in images.items():
        for i, image in enumerate(stack):
            _write_png(os.path.join(root, name, f"{i:02d}.png"), image)
    return images


def test_folder_round_trips_pixels_and_subfolder_labels(tmp_path):
    images = _labelled_folder(str(tmp_path))
    source = f"folder:{tmp_path}"
    info = dataset_info(source)
    assert info["image_shape"] == (16, 8) and info["num_examples"] == 9
    assert info["label_spec"].attributes == (("class", ("cats", "dogs")),)
    batch = _batches(source, resolution=(16, 8), batch_size=9)[0]
    for image, label, key in zip(batch["image"], batch["label"], batch["key"]):
        name, file = key.decode().split("/")
        original = images[name][int(file[:2])]
        np.testing.assert_array_equal(np.round((image + 1.0) * 127.5).astype(np.uint8), original)
        np.testing.assert_array_equal(label, info["label_spec"].encode({"class": name}))


def test_unlabelled_square_folder_at_every_stage(tmp_path):
    for i, image in enumerate(_random_images(6, (32, 32))):
        _write_png(str(tmp_path / f"{i}.png"), image)
    assert dataset_info(f"folder:{tmp_path}")["label_spec"] is None
    for size in (32, 16, 8, 4):
        batch = _batches(f"folder:{tmp_path}", resolution=(size, size), batch_size=4, flip=True)[0]
        assert batch["image"].shape == (4, size, size, 3) and batch["label"].shape == (4, 0)
        assert -1.0 <= batch["image"].min() and batch["image"].max() <= 1.0


def _prepared(root, num=7):
    writer = PreparedWriter(root, (16, 8), sp.LABEL_SPEC, shard_size=3)
    images = _random_images(num, (16, 8), 3)
    for i, image in enumerate(images):
        writer.add(f"p{i}", image, sp.LABEL_SPEC.parse(f"hair_color=red,hairband={i % 2}"))
    writer.close({})
    return images


def test_prepared_dataset_through_the_pipeline(tmp_path):
    images = _prepared(str(tmp_path))
    batch = _batches(str(tmp_path), resolution=(8, 4), batch_size=7)[0]
    assert [k.decode() for k in batch["key"]] == [f"p{i}" for i in range(7)]
    np.testing.assert_allclose(batch["image"], _block_mean(images.astype(np.float64), 2, 2) / 127.5 - 1,
                               atol=1e-5)
    assert [sp.LABEL_SPEC.decode(l)["hairband"] for l in batch["label"]] == ["0", "1"] * 3 + ["0"]


def test_two_processes_read_disjoint_parts_that_cover_the_data(tmp_path, data_dir):
    _labelled_folder(str(tmp_path / "folder"))
    _prepared(str(tmp_path / "prepared"))
    for source, directory, total in [(SOURCE, data_dir, 64), (f"folder:{tmp_path / 'folder'}", None, 9),
                                     (str(tmp_path / "prepared"), None, 7)]:
        parts = [set(_concat(_batches(source, directory, resolution=(8, 4), batch_size=3,
                                      process_index=i, process_count=2), "key")) for i in range(2)]
        assert not parts[0] & parts[1], source
        assert len(parts[0] | parts[1]) == total and abs(len(parts[0]) - len(parts[1])) <= 1, source
    # Left out, process_index/process_count come from JAX: a single process reads everything.
    everything = list(make_pipeline(SOURCE, data_dir=data_dir, resolution=(8, 4), batch_size=64,
                                    repeat=False))
    assert len(set(everything[0]["key"])) == 64


def test_exclude_file_leaves_out_its_keys(tmp_path, data_dir):
    excluded = [b"0-0000003", b"0-0000017", b"0-0000042"]
    exclude = tmp_path / "exclude.txt"
    exclude.write_text("\n".join(k.decode() for k in excluded) + "\n\n")
    keys = set(_concat(_batches(SOURCE, data_dir, resolution=(8, 4), batch_size=8,
                                exclude=str(exclude)), "key"))
    assert len(keys) == 61 and not keys & set(excluded)


def test_default_data_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_JAX_DATA_DIR", str(tmp_path))
    builder = tfds.builder("synthetic_portraits/64x32_n8_t8")  # constructing does not generate
    assert str(builder.data_dir).startswith(str(tmp_path))
    assert (builder.builder_config.num_train, builder.builder_config.seed) == (8, 0)
