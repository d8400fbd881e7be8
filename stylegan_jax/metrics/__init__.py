"""Quality metrics: sliced Wasserstein distance (PGGAN), FID/KID (Inception-v3 features), PPL."""
from stylegan_jax.metrics.evaluate import METRICS, evaluate, parse_metrics
from stylegan_jax.metrics.fid import (feature_statistics, fid_from_features, frechet_distance,
                                      kernel_inception_distance, polynomial_mmd2_unbiased)
from stylegan_jax.metrics.inception import (FIDInceptionV3, inception_features, load_fid_inception,
                                            variables_from_state_dict)
from stylegan_jax.metrics.ppl import (ffhq_face_crop, path_length_samples, perceptual_path_length,
                                      pixel_mse_distance, slerp)
from stylegan_jax.metrics.swd import DescriptorSet, sliced_wasserstein_distance
