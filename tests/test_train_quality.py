"""config.metrics is validated when a run starts, with messages that name the fix."""
import pytest

from experiments import config_flags
from stylegan_jax.training.quality import check_metrics_config


def metrics_config(**values):
    config = config_flags.load_config("smoke", lock=False).metrics
    config.update(values)
    return config


def test_metric_names_are_checked_before_training_starts():
    assert check_metrics_config(metrics_config(names="swd")) == ("swd",)
    assert check_metrics_config(metrics_config(names="swd,fid", inception="i.npz")) == ("swd", "fid")
    with pytest.raises(ValueError, match="ppl cannot run during training.*experiments.evaluate"):
        check_metrics_config(metrics_config(names="swd,ppl"))
    with pytest.raises(ValueError, match="inception is unset.*convert_fid_weights"):
        check_metrics_config(metrics_config(names="kid"))
    with pytest.raises(ValueError, match="unknown metrics"):
        check_metrics_config(metrics_config(names="lpips"))
