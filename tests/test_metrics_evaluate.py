"""evaluate(): streams batches into SWD and PPL and names its results; bad requests fail clearly."""
import numpy as np
import pytest

from stylegan_jax.data import synthetic_portraits
from stylegan_jax.metrics import evaluate, parse_metrics, sliced_wasserstein_distance

SHAPE = (64, 32)


def real_batches(seed):
    for start in range(0, 10_000, 16):
        yield {"image": synthetic_portraits.generate(seed, range(start, start + 16), SHAPE)["image"]}


def test_streamed_swd_agrees_with_one_shot_swd_and_ranks_noise_worse():
    reals = np.concatenate([b["image"] for _, b in zip(range(3), real_batches(0))])[:40]
    other = synthetic_portraits.generate(1, range(40), SHAPE)["image"]
    by_index = iter([other[i:i + 16] for i in range(0, 48, 16)])
    result = evaluate("swd", generate_images=lambda key, n: next(by_index), real_batches=real_batches(0),
                      num_images=40, batch_size=16)
    one_shot = sliced_wasserstein_distance(reals, other)
    assert set(result) == {"swd_64x32", "swd_32x16", "swd_avg"}
    # same sets; patches are drawn batch by batch, so only the sampling noise differs
    assert result["swd_avg"] == pytest.approx(one_shot["avg"], rel=0.25)
    noise = lambda key, n: np.random.default_rng(int(key[-1])).uniform(-1, 1, (n, *SHAPE, 3)).astype(np.float32)
    noisy = evaluate(["swd"], generate_images=noise, real_batches=real_batches(0), num_images=40, batch_size=16)
    assert noisy["swd_avg"] > 3 * result["swd_avg"]


def test_images_under_16_px_are_measured_enlarged_by_nearest_neighbour():
    shrink = lambda x: x.reshape(32, 16, 4, 8, 4, 3).mean(axis=(2, 4))  # noqa: E731  64x32 -> 16x8
    small_real = shrink(synthetic_portraits.generate(0, range(32), SHAPE)["image"])
    small_fake = shrink(synthetic_portraits.generate(1, range(32), SHAPE)["image"])
    result = evaluate("swd", generate_images=lambda key, n: small_fake[:n],
                      real_batches=iter([small_real]), num_images=32, batch_size=32)
    # Same as the one-shot SWD of the sets enlarged 2x by repetition, by hand (same positions).
    enlarge = lambda x: np.repeat(np.repeat(x, 2, axis=1), 2, axis=2)  # noqa: E731
    expected = sliced_wasserstein_distance(enlarge(small_real), enlarge(small_fake))
    assert set(result) == {"swd_32x16", "swd_avg"}
    assert result["swd_avg"] == pytest.approx(expected["avg"], rel=1e-5)


def test_bad_requests_raise_clear_errors():
    with pytest.raises(ValueError, match="choose from swd, fid, kid, ppl"):
        parse_metrics("swd,is")
    with pytest.raises(ValueError, match="inception_weights"):
        evaluate("fid", generate_images=lambda k, n: None, real_batches=[])
    with pytest.raises(ValueError, match="ran out after 16 of 40"):
        evaluate("swd", generate_images=lambda k, n: np.zeros((n, *SHAPE, 3), np.float32),
                 real_batches=[np.zeros((16, *SHAPE, 3), np.uint8)], num_images=40)
    with pytest.raises(ValueError, match="ppl needs mapping_fn"):
        evaluate("ppl")
