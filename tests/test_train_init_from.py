"""Fine-tuning: config.init_from (an imported StyleGAN v1 pickle or a checkpoint) and FreezeD."""
import jax
import numpy as np
import pytest

import stylegan_v1_pickles as official
from experiments import config_flags
from stylegan_jax.pretrained import stylegan_v1
from stylegan_jax.training import init_from, loop, schedule, state as state_lib
from stylegan_jax.utils import ConfigError

START_KIMG = 0.064  # smoke schedule from 8x8: phase 1 (16x16) starts after 32 + 32 images


def pickle_path(tmp_path):
    variables = official.snapshot_variables(official.SMALL, seed=5)
    return official.write_snapshot(str(tmp_path / "snapshot.pkl"),
                                   official.snapshot_networks(official.SMALL, variables))


def finetune_config(pkl, **changes):
    """The smoke config with the imported network's architecture, two steps at 16x16."""
    config = init_from.imported_config(config_flags.load_config("smoke", lock=False),
                                       stylegan_v1.load(pkl))
    config.init_from = pkl
    config.schedule.total_kimg = START_KIMG + 0.016
    config.checkpoint.every_kimg = 0.0
    for key, value in changes.items():
        section, _, name = key.rpartition(".")
        (config[section] if section else config)[name] = value
    return config


def random_source(resolution, batch_size, seed):
    rng = np.random.default_rng(seed)
    while True:
        yield {"image": rng.uniform(-1, 1, (batch_size, *resolution, 3)).astype(np.float32),
               "label": np.zeros((batch_size, 0), np.float32)}


DATA_INFO = {"image_shape": (16, 16), "label_spec": None}


def flat(tree):
    return {"/".join(str(getattr(k, "key", k)) for k in path): np.asarray(x)
            for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def test_stage_start_kimg_is_where_the_schedule_first_trains_the_stage_fully():
    config = config_flags.load_config("ffhq", lock=False).schedule
    geometry = dict(base_shape=(4, 4), num_stages=9)
    for stage in range(1, 9):
        start = schedule.stage_start_kimg(config, stage=stage, **geometry)
        at = schedule.phase_at(int(start * 1000), config, **geometry)
        before = schedule.phase_at(int(start * 1000) - 1, config, **geometry)
        assert (at.stage, at.alpha) == (stage, 1.0)
        assert before.stage < stage or before.alpha < 1.0 or stage == 1


def test_mismatched_shapes_and_short_schedules_are_one_line_config_errors(tmp_path):
    pkl = pickle_path(tmp_path)
    source = init_from.load_source(pkl)
    for change, name in (({"generator.fmap_max": 16}, "synthesis_network"),
                         ({"model.num_stages": 4}, "absent"),
                         ({"discriminator.fmap_base": 32}, "d_params")):
        config = finetune_config(pkl, **change)
        G, D = state_lib.build_networks(config)
        abstract = jax.eval_shape(lambda: state_lib.init_train_state(G, D, config))
        with pytest.raises(ConfigError) as error:
            init_from.initial_state(abstract, config, source)
        assert name in str(error.value) and "\n" not in str(error.value)
    config = finetune_config(pkl, **{"schedule.total_kimg": 0.05})
    G, D = state_lib.build_networks(config)
    with pytest.raises(ConfigError, match="total_kimg.*0.064"):
        init_from.initial_state(jax.eval_shape(lambda: state_lib.init_train_state(G, D, config)),
                                config, source)
    with pytest.raises(ConfigError, match="does not exist"):
        init_from.load_source(str(tmp_path / "nothing.pkl"))


def test_a_written_import_is_the_same_source_as_its_pickle(tmp_path):
    pkl = pickle_path(tmp_path)
    imported = stylegan_v1.load(pkl)
    config = finetune_config(pkl)
    step_dir = init_from.write_imported_checkpoint(str(tmp_path / "run"), config, imported, pkl)
    for where in (str(tmp_path / "run"), step_dir):
        source = init_from.load_source(where)
        assert source.stage == 2
        for mine, theirs in ((source.g_params, imported.g_params), (source.d_params, imported.d_params),
                             (source.g_ema_params, imported.g_ema_params)):
            a, b = flat(mine), flat(theirs)
            assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
        np.testing.assert_array_equal(source.w_avg, imported.w_avg)


def test_frozen_d_layers_are_the_blocks_nearest_the_input():
    from stylegan_jax.networks import Discriminator
    D = Discriminator(num_stages=3)
    assert state_lib.frozen_d_layers(D, 0) == ()
    assert state_lib.frozen_d_layers(D, 1) == ("fromrgb_16x16", "16x16_conv0", "16x16_conv1_down")
    with pytest.raises(ConfigError, match="between 0 and 2"):
        state_lib.frozen_d_layers(D, 3)


@pytest.mark.slow
def test_a_fine_tuned_run_starts_from_exactly_the_imported_networks(tmp_path):
    pkl = pickle_path(tmp_path)
    imported = stylegan_v1.load(pkl)
    # Learning rates 0: the networks stay what the first step started from.
    config = finetune_config(pkl, **{"schedule.g_lrate_base": 0.0, "schedule.d_lrate_base": 0.0})
    final = jax.device_get(loop.train_and_evaluate(config, str(tmp_path / "run"),
                                                   make_source=random_source, data_info=DATA_INFO))
    assert int(final.step) == 2 and int(final.nimg) == 64 + 16  # two steps of 8 at 16x16
    for mine, theirs in ((final.g_params, imported.g_params), (final.d_params, imported.d_params),
                         (final.g_ema_params, imported.g_ema_params)):
        a, b = flat(mine), flat(theirs)
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(final.w_avg, imported.w_avg)  # tracked from the imported average
    assert np.abs(final.w_avg - imported.w_avg).max() < np.abs(imported.w_avg).max()


@pytest.mark.slow
def test_freeze_d_keeps_the_lower_blocks_bit_identical(tmp_path):
    pkl = pickle_path(tmp_path)
    imported = stylegan_v1.load(pkl)
    config = finetune_config(pkl, freeze_d_blocks=1)
    final = jax.device_get(loop.train_and_evaluate(config, str(tmp_path / "run"),
                                                   make_source=random_source, data_info=DATA_INFO))
    frozen = ("fromrgb_16x16", "16x16_conv0", "16x16_conv1_down")
    after, before = flat(final.d_params), flat(imported.d_params)
    for key in after:
        if key.split("/")[0] in frozen:
            assert np.array_equal(after[key], before[key]), key
    for layer in ("8x8_conv0", "8x8_conv1_down", "4x4_conv", "4x4_dense0", "4x4_dense1"):
        assert not np.array_equal(after[f"{layer}/kernel"], before[f"{layer}/kernel"]), layer
    g_after, g_before = flat(final.g_params), flat(imported.g_params)
    assert any(not np.array_equal(g_after[k], g_before[k]) for k in g_after)
