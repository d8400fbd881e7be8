"""The explorer's Python API: look inside a trained generator and edit what it draws.

    from stylegan_jax.explore import Edit, Explorer, box_mask, edit_deltas, parse_channels
    ex = Explorer.open("workdirs/demo")                # or an exported .npz
    w = ex.w_from_seeds([7], psi=0.7)
    out = ex.synthesize(w, return_features=True)       # images + every layer's feature maps
    layer = ex.layer("16x8_conv1")
    mask = box_mask((layer.height, layer.width), (0.6, 0.3, 0.8, 0.7))   # (ymin, xmin, ymax, xmax)
    edit = Edit(layer.name, parse_channels("3,5*0.5", layer.channels), mask, amount=2.0)
    ex.synthesize(w, edit_deltas([edit], ex))          # re-runs only the layers after 16x8_conv1

A UI's whole editing state (tabs, locators, latent directions) is a `Recipe`; its JSON form is
what a client saves, sends and loads (`Recipe.from_json` validates it).

Modules: model (loading/exporting generators), synthesis_hooks (feature maps, edits, resuming
and normalization statistics of one synthesis pass, from outside the network), explorer
(generation, features, cached re-synthesis), edits (edits, tabs, channel lists, region
painting), find (channel ranking and edit proposals from two examples), locate (finding parts
from activations), recipe (JSON edit recipes), latent (interpolation, attribute vectors, style
mixing), factorize (directions without labels: SeFa, GANSpace), project (projection of real
images into W / W+), media (PNG metadata, GIF/MP4,
batch sweeps), server + handlers + api_models + static/
(the web UI and its JSON API, described at /docs:
`python -m experiments.explore`). Errors from bad requests are ValueError with a one-line
message.
"""
from stylegan_jax.explore.explorer import Explorer, Rendering, seed_latents
from stylegan_jax.explore.model import GeneratorBundle, load_generator, random_bundle, save_generator
from stylegan_jax.explore.edits import Edit, box_mask, edit_deltas, format_channels, parse_channels
from stylegan_jax.explore.recipe import Recipe, apply_recipe, apply_to_seeds
