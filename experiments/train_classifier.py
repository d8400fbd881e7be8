"""Train the attribute classifier that judges conditional generators, and ship it.

  python -m experiments.train_classifier --out=stylegan_jax/assets/attribute_classifier.msgpack

Trains on the train split of a labelled dataset at 64x32 (default: the synthetic portraits),
measures per-attribute accuracy on its held-out test split, and writes the params (flax msgpack)
plus a JSON beside them with the LabelSpec, this command and the accuracy. About a minute on two
CPU cores.
"""
import shlex
import sys

import numpy as np
from absl import app, flags

from stylegan_jax import classifier
from stylegan_jax.data.pipeline import dataset_info, make_pipeline
from stylegan_jax.utils import exit_with_error

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "synthetic_portraits", "Labelled source (TFDS name or prepared dir).")
flags.DEFINE_string("out", classifier.DEFAULT_PATH, "Output .msgpack path (a .json goes beside it).")
flags.DEFINE_integer("steps", 600, "Training steps.")
flags.DEFINE_integer("batch_size", 64, "Minibatch size.")
flags.DEFINE_float("learning_rate", 2e-3, "Peak Adam learning rate (cosine decay to 0).")
flags.DEFINE_integer("seed", 0, "Initialization and batch-order seed.")
flags.DEFINE_string("test_split", "test", "Held-out split the accuracy is measured on.")
flags.DEFINE_string("data_dir", None, "TFDS data directory.")


def load_split(source, split, data_dir=None):
    """All (images [N, 64, 32, 3] in [-1, 1], labels [N, dim]) of a split, in a fixed order."""
    batches = list(make_pipeline(source, resolution=classifier.INPUT_SHAPE, batch_size=500, split=split,
                                 shuffle=False, repeat=False, drop_remainder=False, data_dir=data_dir,
                                 process_index=0, process_count=1))
    return (np.concatenate([b["image"] for b in batches]), np.concatenate([b["label"] for b in batches]))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:  # the data first: a missing dataset, split or label set ends the command before training
        spec = dataset_info(FLAGS.dataset, FLAGS.data_dir, split=FLAGS.test_split)["label_spec"]
        if spec is None:
            raise ValueError(f"dataset {FLAGS.dataset!r} has no labels: the classifier needs a labelled source")
        images, labels = load_split(FLAGS.dataset, "train", FLAGS.data_dir)
        test_images, test_labels = load_split(FLAGS.dataset, FLAGS.test_split, FLAGS.data_dir)
    except (FileNotFoundError, ValueError) as e:
        exit_with_error(e)
    widths = classifier.WIDTHS
    params = classifier.train_classifier(images, labels, spec, steps=FLAGS.steps, batch_size=FLAGS.batch_size,
                                         learning_rate=FLAGS.learning_rate, seed=FLAGS.seed, widths=widths)
    judge = classifier.AttributeClassifier(params, spec, widths)
    accuracy = judge.accuracy(test_images, test_labels)
    half = judge.accuracy(classifier.to_input_shape(test_images, (32, 16)), test_labels)
    info = {"dataset": FLAGS.dataset, "num_train": int(len(images)),
            "command": "python -m experiments.train_classifier " + shlex.join(sys.argv[1:]),
            "test_split": FLAGS.test_split, "num_test": int(len(test_images)),
            "test_accuracy": accuracy, "test_accuracy_at_32x16": half}
    classifier.save_attribute_classifier(FLAGS.out, params, spec, widths, info)
    for name in accuracy:
        print(f"{name:12s} test accuracy {accuracy[name]:.4f}  (from 32x16: {half[name]:.4f})")
    print(f"wrote {FLAGS.out} and {classifier.metadata_path(FLAGS.out)}")


if __name__ == "__main__":
    app.run(main)
