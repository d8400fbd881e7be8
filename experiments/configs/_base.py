"""Every training config field, with the StyleGAN paper's values as defaults.

Named configs (demo.py, smoke.py, rect_anime.py, ffhq.py) start from `get_base_config()` and
change only what differs; this file documents what each field means. Sources: NVlabs/stylegan
train.py and training/training_loop.py (Karras et al., arXiv 1812.04948, appendix C).
"""
import ml_collections
from ml_collections import config_dict


def resolution_table(base_shape, num_stages, values):
    """{'res<larger side>': value} for the stages of a model, from a list of per-stage values.

    Per-resolution tables are keyed by the larger image side ('res64' for 64x32), see
    stylegan_jax/training/schedule.py. `values` lists one value per stage, base stage first.
    """
    assert len(values) == num_stages, (values, num_stages)
    return {f"res{max(base_shape) * 2**s}": v for s, v in enumerate(values)}


def get_base_config() -> ml_collections.ConfigDict:
    """The StyleGAN FFHQ setup (1024x1024, 8 GPUs); named configs override parts of it."""
    config = ml_collections.ConfigDict()
    config.seed = 0                        # one seed for init, latents, noise and data order
    config.fast_compile = False            # XLA:CPU only: skip LLVM optimizations of the train
                                           # step (compiles ~2x faster, runs slower; for tests)

    config.init_from = config_dict.placeholder(str)  # start from trained networks: a StyleGAN
                                           # v1 .pkl, a workdir or a checkpoints/<step> dir (G,
                                           # D, G average, tracked w; fresh Adam), at the kimg
                                           # where the schedule reaches its stage (fine-tuning;
                                           # ignored when the workdir already has a checkpoint)
    config.freeze_d_blocks = 0             # FreezeD (arXiv 2002.10964): D's blocks nearest the
                                           # input (highest resolutions, with their fromRGB) that
                                           # are not updated; 0 = none

    config.data = ml_collections.ConfigDict()
    config.data.source = "ffhq"            # make_pipeline source: TFDS name, prepared dir, folder:..
    config.data.data_dir = config_dict.placeholder(str)  # TFDS data_dir (None = TFDS default)
    config.data.exclude = config_dict.placeholder(str)  # text file of image keys to leave out
                                           # (None = a prepared set's review_exclude.txt, the
                                           # images marked bad in experiments.review, if any)
    config.data.flip = True                # random horizontal mirroring (official mirror_augment)
    config.data.use_labels = False         # condition G and D on the dataset's labels, if any
    config.data.reseed_every_kimg = 100.0  # the data stream restarts (new seed) this often; a
                                           # resumed run skips at most this much to match exactly

    config.model = ml_collections.ConfigDict()
    config.model.base_shape = (4, 4)       # (H, W) of the first stage; (8, 4) for 2:1 portraits
    config.model.num_stages = 9            # 4x4 .. 1024x1024
    config.model.dtype = "float32"         # compute dtype; "bfloat16" = mixed precision

    config.generator = ml_collections.ConfigDict()
    config.generator.latent_size = 512     # dimensionality of z
    config.generator.dlatent_size = 512    # dimensionality of w
    config.generator.mapping_layers = 8    # dense layers of the mapping network
    config.generator.mapping_fmaps = 512   # width of the mapping network
    config.generator.mapping_lr_mul = 0.01  # mapping network learning-rate multiplier
    config.generator.fmap_base = 8192      # channels of stage s: min(fmap_base / 2**s, fmap_max)
    config.generator.fmap_decay = 1.0      # log2 channel reduction per stage
    config.generator.fmap_max = 512        # maximum channel count
    config.generator.use_noise = True      # per-layer noise inputs
    config.generator.fused_scale = "auto"  # fused up-conv: "auto" (smaller side >= 128), True or False

    config.discriminator = ml_collections.ConfigDict()
    config.discriminator.fmap_base = 8192  # channel multiplier, as for the generator
    config.discriminator.fmap_decay = 1.0  # log2 channel reduction per stage
    config.discriminator.fmap_max = 512    # maximum channel count
    config.discriminator.mbstd_group_size = 4    # minibatch-stddev group (contiguous examples)
    config.discriminator.mbstd_num_features = 1  # minibatch-stddev feature maps
    config.discriminator.fused_scale = "auto"    # fused conv-down, as for the generator
    config.discriminator.conditioning = "switch"  # with labels: "switch" (official), "projection",
                                                 # "acgan" or "none" (networks.CONDITIONING_MODES)

    config.schedule = ml_collections.ConfigDict()
    config.schedule.total_kimg = 25000.0         # length of training in thousands of real images
    config.schedule.lod_initial_resolution = 8   # larger side of the first trained stage
    config.schedule.lod_training_kimg = 600.0    # kimg at each resolution before the next fades in
    config.schedule.lod_transition_kimg = 600.0  # kimg over which a new resolution fades in
    config.schedule.minibatch_base = 32          # global minibatch where minibatch_dict has none
    config.schedule.minibatch_dict = resolution_table(   # global minibatch per resolution
        (4, 4), 9, [512, 256, 128, 64, 32, 32, 32, 32, 32])
    config.schedule.g_lrate_base = 0.001         # generator learning rate
    config.schedule.g_lrate_dict = {"res128": 0.0015, "res256": 0.002, "res512": 0.003,
                                    "res1024": 0.003}  # per-resolution overrides
    config.schedule.d_lrate_base = 0.001         # discriminator learning rate
    config.schedule.d_lrate_dict = {"res128": 0.0015, "res256": 0.002, "res512": 0.003,
                                    "res1024": 0.003}  # per-resolution overrides
    config.schedule.lrate_rampup_kimg = 0.0      # linear learning-rate warm-up (0 = none)
    config.schedule.reset_opt_for_new_lod = True  # reset Adam when a fade-in starts and ends

    config.optimizer = ml_collections.ConfigDict()
    config.optimizer.b1 = 0.0                    # Adam beta1 (StyleGAN: 0)
    config.optimizer.b2 = 0.99                   # Adam beta2
    config.optimizer.eps = 1e-8                  # Adam epsilon

    config.loss = ml_collections.ConfigDict()
    config.loss.r1_gamma = 10.0                  # R1 weight on real images (0 = off)
    config.loss.r1_interval = 1                  # lazy R1: every k steps, weighted by k (1 = every step)
    config.loss.r1_resolution = "full"           # "full" (official): R1 as if taken on the reals
                                                 # upscaled to the final resolution, so a stage k
                                                 # doublings below it weighs gamma / 4^k; "stage":
                                                 # gamma at every stage's own resolution
    config.loss.style_mixing_prob = 0.9          # mixing regularization (StyleGAN section 3.1)
    config.loss.g_ema_half_life_kimg = 10.0      # half-life of the generator weight average
    config.loss.w_avg_beta = 0.995               # decay of the tracked average w (truncation)
    config.loss.fake_labels = "data"             # conditional: labels G is asked for in training,
                                                 # the real batch's ("data", official) or "uniform"
    config.loss.mismatch_weight = 0.0            # projection / switch: weight of reals with one
                                                 # attribute's label changed scored as fakes
                                                 # (matching-aware D, arXiv 1605.05396; 0 = off)
    config.loss.acgan_loss = "softmax"           # ACGAN classifier loss: "softmax" per attribute
                                                 # or "sigmoid" per label column
    config.loss.acgan_d_weight = 1.0             # ACGAN: weight of D classifying the reals
    config.loss.acgan_g_weight = 1.0             # ACGAN: weight of G's fakes being recognized

    config.augment = ml_collections.ConfigDict()  # augmentation of every image D sees
    config.augment.kind = "none"                 # "none", "ada" (adaptive p, Karras et al. 2020,
                                                 # arXiv 2006.06676), "fixed" (p constant) or
                                                 # "diffaug" (DiffAugment colour, translation and
                                                 # cutout on every image, arXiv 2006.10738)
    config.augment.p = 0.0                       # probability of each transform: ada's initial
                                                 # p, fixed's constant one
    config.augment.target = 0.6                  # ada: the E[sign(D(real))] that p steers to
    config.augment.speed_kimg = 500.0            # ada: kimg over which p can move from 0 to 1
    config.augment.interval = 4                  # ada: steps between adjustments of p
    config.augment.pipeline = "bgc"              # ada/fixed: groups of transforms, b blit (flip,
                                                 # quarter turns, integer shift), g geometry
                                                 # (scale, rotation, fractional shift), c colour

    config.checkpoint = ml_collections.ConfigDict()
    config.checkpoint.every_kimg = 100.0         # save this often (also at each stage change,
                                                 # at the end and on SIGTERM/SIGINT)
    config.checkpoint.keep = 3                   # number of checkpoints kept

    config.metrics = ml_collections.ConfigDict()
    config.metrics.every_kimg = 0.0              # quality metrics during training this often, at
                                                 # the current stage's resolution (0 = off)
    config.metrics.names = "swd"                 # comma-separated from swd, fid, kid (SWD needs
                                                 # no pretrained network; fid/kid need inception)
    config.metrics.num_images = 2000             # generated and real images per measurement
    config.metrics.batch_size = 32               # images generated per call
    config.metrics.inception = config_dict.placeholder(str)  # FID Inception .npz for fid/kid
                                                 # (python -m stylegan_jax.metrics.convert_fid_weights)

    config.log = ml_collections.ConfigDict()
    config.log.every_steps = 20                  # metrics to TensorBoard / progress bar
    config.log.sample_every_kimg = 100.0         # fixed-latent sample grid PNG this often
    config.log.grid_rows = 4                     # sample grid: rows
    config.log.grid_cols = 8                     # sample grid: columns
    config.log.sample_psi = 1.0                  # truncation of the sample grid (1 = none)
    return config
