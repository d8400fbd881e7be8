"""experiments.preview_data writes a grid of exactly the pipeline's images, captioned, with boxes."""
import numpy as np
from PIL import Image

from experiments.preview_data import label_lines, preview
from stylegan_jax.data import synthetic_portraits as sp
from stylegan_jax.data.pipeline import make_pipeline

SOURCE = "synthetic_portraits/64x32_n8_t8_s0"


def test_grid_cells_hold_the_enlarged_pipeline_images(tmp_path):
    data_dir = str(tmp_path / "tfds")
    out = preview(SOURCE, str(tmp_path / "grid.png"), num=8, columns=4, cell_width=64, seed=0,
                  data_dir=data_dir, boxes=True)
    grid = np.asarray(Image.open(out).convert("RGB"))
    batch = next(make_pipeline(SOURCE, resolution=(64, 32), batch_size=8, seed=0, repeat=False,
                               process_index=0, process_count=1, data_dir=data_dir))
    assert grid.shape[1] == 4 * (64 + 4)  # 4 columns of 32 px images enlarged 2x, 4 px gaps
    first = np.round((batch["image"][0] + 1) * 127.5).astype(np.uint8).repeat(2, 0).repeat(2, 1)
    cell = grid[2:2 + 128, 2:2 + 64]
    # Identical except where box outlines are drawn over the image.
    assert np.mean(np.all(cell == first, axis=-1)) > 0.8
    assert np.any(np.all(grid == (255, 255, 0), axis=-1))  # the yellow face boxes


def test_captions_name_classes_and_set_flags():
    label = sp.LABEL_SPEC.parse("hair_color=blonde,eye_color=red,mouth_open=1,hairband=0")
    assert label_lines(sp.LABEL_SPEC, label) == ["blonde hair", "red eye", "mouth_open"]
    assert label_lines(None, np.zeros([0])) == []
