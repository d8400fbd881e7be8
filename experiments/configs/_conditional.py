"""Turns a config into a conditional one: labels on, D's conditioning, the loss settings.

Shared by demo_acgan / demo_projection / rect_anime_acgan / rect_anime_projection. The fields are
documented in _base.py; their meaning is in stylegan_jax/conditional.py and
networks.CONDITIONING_MODES.
"""
from stylegan_jax.conditional import check_conditioning


def make_conditional(config, conditioning: str, acgan_loss: str = "softmax"):
    """`config` with data labels on and D conditioned by `conditioning` (edited in place)."""
    check_conditioning(conditioning, acgan_loss)
    config.data.use_labels = True                      # G: label embedding joins z (official)
    config.discriminator.conditioning = conditioning   # how D uses the labels
    # Projection: a matching-aware D (reals with a wrong label scored as fakes). Without it the
    # demo's projection run reaches 0.735 on its weakest attribute in 170 kimg, with it 0.906 and
    # 0.948 in two runs (benchmarks/README.md, conditional generators).
    config.loss.mismatch_weight = 1.0 if conditioning == "projection" else 0.0
    config.loss.acgan_loss = acgan_loss                # ACGAN only: softmax per attribute
    config.loss.acgan_d_weight = 1.0                   # ACGAN only: D classifying the reals
    config.loss.acgan_g_weight = 1.0                   # ACGAN only: G's fakes recognized
    return config
