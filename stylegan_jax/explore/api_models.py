"""The explorer web API's request and response models (pydantic).

Their JSON Schema is the API's description (OpenAPI at /openapi.json, interactive at /docs), and
they bound every input before any work is done: integers and numbers to ranges (JSON numbers too
large for a float arrive as inf and are refused as not finite), strings and lists to lengths,
masks to MAX_MAP_SIDE cells a side. Unknown fields are refused (a typo does not pass silently).
Checks that need the model (layer names, channel ranges, mask shapes) stay in handlers.py and
recipe.py and answer 400.

Numbers that scale the generator's activations (edit amounts, channel multipliers, mask values,
direction strengths and vectors) are bounded to +-MAX_NUMBER, so float32 cannot overflow in the
edit itself; a result that still is not finite is refused by handlers.check_finite (422 naming
the field) rather than sent as NaN.
"""
import typing
from typing import Annotated, Any, Dict, List, Literal, Optional, Tuple, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model, model_validator

from stylegan_jax.explore.edits import MAX_MULTIPLIER
from stylegan_jax.networks import LayerSpec
from stylegan_jax.utils import parse_json

MAX_SEEDS = 64            # images per gallery / seed grid request
MAX_FRAMES = 240          # frames per animation
MAX_SCALE = 16            # enlargement of an animation
MAX_NUMBER = MAX_MULTIPLIER
MAX_MAP_SIDE = 1024       # rows and columns of a mask
MAX_EDITS = 64            # edits, directions (each) in one recipe
MAX_LOCATORS = 16
MAX_SWEEP_SIDE = 16       # seeds, amounts of a sweep (at most MAX_SEEDS cells in all)
MAX_VECTOR = 4096         # values of a direction (the model's dlatent size)
MAX_TEXT = 200            # names
MAX_CHANNEL_TEXT = 4000   # a channel list such as "1,3,10-20*0.5"
MAX_DATA = 16 << 20       # characters of a PNG data URL or a w's base64
MAX_INDEX = 1 << 16       # layer indices, channel numbers, top-k
MAX_PROJECT_STEPS = 2000  # optimisation steps of one projection
MAX_FACTORS = 32          # directions found by one factorize request
MAX_FACTOR_SAMPLES = 100_000  # sampled w's of a GANSpace request
PROJECTED_NOISE = r"^projected-[0-9]{1,9}$"  # noise modes of projected images' noise maps

Seed = Annotated[int, Field(strict=True, ge=0, le=2**32 - 1, description="an integer seed")]
Psi = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-2, le=2,
                             description="truncation psi (1 = none)")]
Number = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-MAX_NUMBER, le=MAX_NUMBER)]
Scale = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-100, le=100)]
Index = Annotated[int, Field(strict=True, ge=0, le=MAX_INDEX)]
Name = Annotated[str, Field(strict=True, max_length=MAX_TEXT)]
ChannelText = Annotated[str, Field(strict=True, max_length=MAX_CHANNEL_TEXT,
                                   description='channels like "1,3,10-20,5*0.5"')]
Row = Annotated[List[Number], Field(max_length=MAX_MAP_SIDE)]
Mask = Annotated[List[Row], Field(max_length=MAX_MAP_SIDE,
                                  description="rows x columns at the layer's resolution")]
NoiseMode = Union[Literal["const", "random", "none"],
                  Annotated[str, Field(strict=True, pattern=PROJECTED_NOISE,
                                       description="a projected image's noise maps")]]
Seeds = Annotated[List[Seed], Field(min_length=1, max_length=MAX_SEEDS)]


class Model(BaseModel):
    """Base: unknown fields are errors."""
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# ------------------------------------------------------------------ latents and recipes
class W(Model):
    """A w as the exact float32 bytes (media.encode_w)."""
    shape: Annotated[List[Annotated[int, Field(strict=True, ge=0, le=MAX_VECTOR)]],
                     Field(max_length=3)]
    float32_base64: Annotated[str, Field(strict=True, max_length=MAX_DATA)]


Label = Annotated[List[Number], Field(min_length=1, max_length=MAX_VECTOR,
                                      description="a conditional model's label vector (one-hot "
                                                  "classes), for seeds")]


class _Latent(Model):
    """{"seed": int, "psi": float, "label": [...]} or {"w": W}."""
    seed: Optional[Seed] = None
    psi: Optional[Psi] = None
    w: Optional[W] = None
    label: Optional[Label] = None


class CenterLatent(_Latent):
    """A truncation center given as another image (a "base image"): exactly one of seed or w;
    without a label it takes the label of the latent it centers."""

    @model_validator(mode="after")
    def _one_latent(self):
        check_latent(self)
        return self


class SeedOptions(Model):
    """How seeds become w's: a conditional model's label, and where psi truncates toward."""
    label: Optional[Label] = None
    center: Optional[Union[Literal["average", "class"], CenterLatent]] = Field(
        None, description='truncation center: "average" (w_avg, the default), "class" (the '
                          'average w of this label, conditional models) or a latent (a base image)')


class LatentFields(_Latent, SeedOptions):
    """{"seed": int, "psi": float, "label"?, "center"?} or {"w": W}."""


class Latent(LatentFields):
    """A latent: exactly one of seed (with psi) or w."""

    @model_validator(mode="after")
    def _one_latent(self):
        check_latent(self)
        return self


def check_latent(latent: _Latent) -> None:
    """ValueError unless exactly one of seed / w is given, and psi, label and center only with a
    seed."""
    if (latent.seed is None) == (latent.w is None):
        raise ValueError("needs exactly one of 'seed' or 'w'")
    for field in ("psi", "label", "center"):
        if latent.w is not None and getattr(latent, field, None) is not None:
            raise ValueError(f"{field!r} goes with 'seed' ('w' is already mapped and truncated)")


class LocatorJSON(Model):
    layer: Name
    channels: ChannelText
    threshold: Number = 0.5
    template: Optional[Mask] = None
    max_shift: Optional[Index] = None
    offset: Tuple[Annotated[int, Field(strict=True, ge=-MAX_INDEX, le=MAX_INDEX)],
                  Annotated[int, Field(strict=True, ge=-MAX_INDEX, le=MAX_INDEX)]] = (0, 0)


class EditJSON(Model):
    layer: Name
    channels: ChannelText
    name: Name = ""
    amount: Number = 1.0
    enabled: Annotated[bool, Field(strict=True)] = True
    mask: Optional[Mask] = None
    locator: Optional[Name] = None
    anchor: Optional[Tuple[Number, Number]] = None
    contrast: Optional[Tuple[Tuple[Number, Number, Number], Tuple[Number, Number, Number]]] = None


class DirectionJSON(Model):
    vector: Annotated[List[Number], Field(max_length=MAX_VECTOR)]
    name: Name = ""
    strength: Number = 1.0
    layers: Optional[Tuple[Index, Index]] = Field(None, description="[start, stop) or null: all")


class RecipeJSON(Model):
    """recipe.Recipe's JSON form; requests may also send it as a JSON string."""
    format: Literal["stylegan_jax.recipe"]
    version: Literal[1]
    name: Name = ""
    locators: Annotated[Dict[Name, LocatorJSON], Field(max_length=MAX_LOCATORS)] = {}
    edits: Annotated[List[EditJSON], Field(max_length=MAX_EDITS)] = []
    directions: Annotated[List[DirectionJSON], Field(max_length=MAX_EDITS)] = []


def _recipe_text(value):
    return parse_json(value, "recipe") if isinstance(value, str) else value


RecipeArg = Annotated[Optional[RecipeJSON], BeforeValidator(_recipe_text)]


# ------------------------------------------------------------------ requests
class GalleryRequest(SeedOptions):
    seeds: Seeds
    psi: Psi = 1.0
    noise_mode: Optional[NoiseMode] = None


class RenderRequest(Latent):
    recipe: RecipeArg = None
    noise_mode: Optional[NoiseMode] = None
    layer: Optional[Name] = Field(None, description="also return this layer's feature maps")
    selection: Optional[Mask] = None
    sort: Literal["channel", "magnitude", "similarity"] = "channel"
    sort_maps: Literal["edited", "unedited"] = Field(
        "edited", description="whose maps the sort ranks: the edited image's or the unedited's "
                              "(an order that stays put while the edit changes)")
    stats_channels: Optional[ChannelText] = Field(
        None, description="channels the layer's statistics cover (null or empty: all)")


class ChannelsRequest(Model):
    layer: Name
    text: ChannelText = ""
    toggle: Optional[Index] = Field(None, description="a channel to add or remove")


class ProposeRequest(Model):
    a: Latent
    b: Latent
    layer: Name
    mask_a: Mask
    mask_b: Optional[Mask] = None
    top_k: Annotated[int, Field(strict=True, ge=1, le=MAX_INDEX)] = 8
    name: Name = "proposed"
    noise_mode: Optional[NoiseMode] = None


class DirectionRequest(Model):
    with_: Annotated[List[Latent], Field(alias="with", min_length=1, max_length=MAX_SEEDS)]
    without: Annotated[List[Latent], Field(min_length=1, max_length=MAX_SEEDS)]
    name: Name = "direction"
    layers: Optional[Tuple[Index, Index]] = None


class FactorizeRequest(Model):
    """Directions without labels (explore.factorize): SeFa of the layers' style weights, or
    GANSpace's PCA of num_samples sampled w's; applied to layers [start, stop) (null: all). Both
    come as one standard deviation of the num_samples sampled w's along them."""
    method: Literal["sefa", "ganspace"]
    layers: Optional[Tuple[Index, Index]] = Field(None, description="[start, stop) or null: all")
    k: Annotated[int, Field(strict=True, ge=1, le=MAX_FACTORS)] = 5
    num_samples: Annotated[int, Field(strict=True, ge=2, le=MAX_FACTOR_SAMPLES)] = 5000
    seed: Seed = 0


class InterpolateRequest(Model):
    a: Latent
    b: Latent
    t: Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, le=1)]
    space: Literal["w", "z"] = "w"
    recipe: RecipeArg = None
    noise_mode: Optional[NoiseMode] = None


class MixRequest(Model):
    a: Latent
    b: Latent
    crossover: Index
    recipe: RecipeArg = None
    noise_mode: Optional[NoiseMode] = None


class ApplyToSeedsRequest(SeedOptions):
    seeds: Seeds
    recipe: RecipeArg = None
    psi: Psi = 1.0
    amount_scale: Scale = 1.0
    noise_mode: Optional[NoiseMode] = None


class SweepRequest(SeedOptions):
    """A grid: rows = seeds, columns = amounts of the recipe's edit number `edit` (its other
    edits and directions as they are)."""
    seeds: Annotated[List[Seed], Field(min_length=1, max_length=MAX_SWEEP_SIDE)]
    amounts: Annotated[List[Scale], Field(min_length=1, max_length=MAX_SWEEP_SIDE)]
    recipe: RecipeArg = None
    edit: Index = 0
    psi: Psi = 1.0
    noise_mode: Optional[NoiseMode] = None


class LocatorRequest(Latent):
    """A locator built from one image: the part marked by `mask` on `layer`'s maps."""
    layer: Name
    mask: Mask
    top_k: Annotated[int, Field(strict=True, ge=1, le=MAX_INDEX)] = 4
    threshold: Number = 0.5
    template: Annotated[bool, Field(strict=True)] = True
    max_shift: Optional[Index] = None
    name: Name = "part"
    noise_mode: Optional[NoiseMode] = None


class RecipeRequest(Model):
    recipe: RecipeArg = None


class LoadPngRequest(Model):
    data: Annotated[str, Field(strict=True, max_length=MAX_DATA,
                               description="a PNG as a data URL or base64")]


class ExportRequest(LatentFields):
    """png: the latent (seed or w) rendered with the recipe; gif / mp4: an "oscillation" (the
    recipe's amount low -> high -> low on the latent; with `oscillate`, only that edit's or
    direction's, the rest held) or an "interpolation" through `seeds` (the recipe on every frame)."""
    kind: Literal["png", "gif", "mp4"]
    recipe: RecipeArg = None
    noise_mode: Optional[NoiseMode] = None
    animation: Literal["oscillation", "interpolation"] = "oscillation"
    seeds: Optional[Annotated[List[Seed], Field(min_length=2, max_length=MAX_SEEDS)]] = None
    space: Literal["w", "z"] = "w"
    frames: Annotated[int, Field(strict=True, ge=2, le=MAX_FRAMES)] = 24
    fps: Optional[Annotated[float, Field(strict=True, allow_inf_nan=False, ge=1, le=60)]] = None
    scale: Annotated[int, Field(strict=True, ge=1, le=MAX_SCALE)] = 1
    low: Scale = 0.0
    high: Scale = 1.0
    oscillate: Optional[Name] = Field(None, description="oscillation: the name of the one edit or "
                                      "direction to animate (default: the whole recipe)")


class ProjectRequest(Model):
    """An image to project into the model's W (or W+): a PNG or JPEG, framed at the model's
    aspect ratio (centre: the centred box; face: the preparation tools' face crop)."""
    data: Annotated[str, Field(strict=True, max_length=MAX_DATA,
                               description="a PNG or JPEG as a data URL or base64")]
    space: Literal["w", "w+"] = "w"
    steps: Annotated[int, Field(strict=True, ge=1, le=MAX_PROJECT_STEPS)] = 300
    crop: Literal["centre", "face"] = "centre"


# ------------------------------------------------------------------ responses
# A synthesis layer as the page sees it: the fields of networks.LayerSpec, one source for both.
LayerJSON = create_model("LayerJSON", **{name: (kind, ...) for name, kind in
                                         typing.get_type_hints(LayerSpec).items()})


class Info(BaseModel):
    image_shape: List[int]
    latent_size: int
    dlatent_size: int
    num_layers: int
    label_size: int
    noise_mode: str
    layers: List[LayerJSON]
    provenance: Dict[str, Any] = Field(description="where the model came from (file names only)")
    paint_modes: List[str]
    sorts: List[str]
    noise_modes: List[str]
    max_seeds: int
    max_frames: int
    max_scale: int
    projection: Dict[str, Any] = Field(description="the projector's distance, max_steps and "
                                                   "whether the face crop is available")


class ReadyEdits(BaseModel):
    recipe: Optional[RecipeJSON] = Field(description="the model's ready-made sliders (directions "
                                         "and edits at strength / amount 1), or null: none")


class Images(BaseModel):
    images: List[str] = Field(description="PNG data URLs")


class Image(BaseModel):
    image: str = Field(description="a PNG data URL")
    w: W


class Maps(BaseModel):
    layer: LayerJSON
    grid: str
    rows: int
    cols: int
    gap: int
    order: List[int]
    values: Optional[List[float]]
    scale: float
    stats: Optional[Dict[str, Any]] = Field(
        None, description="mean, std, min, max of the layer's maps over stats_channels, "
                          "unedited (without the recipe) and edited")


class Render(Image):
    maps: Optional[Maps] = None


class Channels(BaseModel):
    text: str
    channels: List[Tuple[int, float]]


class Proposal(BaseModel):
    edit: EditJSON


class DirectionReply(BaseModel):
    direction: DirectionJSON


class Sweep(BaseModel):
    images: List[str] = Field(description="PNG data URLs, row by row (seeds x amounts)")
    seeds: List[int]
    amounts: List[float]


class LocatorReply(BaseModel):
    locator: LocatorJSON
    anchor: Tuple[float, float] = Field(description="where the part lies on this image (y, x "
                                                    "fractions): the anchor of an edit it places")


class FactorizeReply(BaseModel):
    method: str
    layers: Tuple[int, int]
    directions: List[DirectionJSON]
    values: List[float] = Field(description="SeFa's eigenvalues or GANSpace's standard deviations")


class RecipeReply(BaseModel):
    recipe: RecipeJSON


class LoadedPng(BaseModel):
    image: str
    w: Optional[W]
    recipe: Optional[RecipeJSON]
    settings: Dict[str, Any]


class Projected(BaseModel):
    """A finished projection (GET /api/jobs/{id}/result of a project job): edit it as
    {"w": w} with noise_mode set to this noise_mode."""
    image: str = Field(description="the reconstruction, a PNG data URL")
    target: str = Field(description="the framed input at the model's resolution")
    w: W
    noise_mode: str = Field(description="the noise mode of the projected noise maps")
    space: str
    steps: int
    distance: str
    final_distance: float
    psnr: float


class Export(BaseModel):
    filename: str
    mime: str
    data: str = Field(description="the file as a data URL")


class Job(BaseModel):
    """A long request running in the background (GET /api/jobs/{id} polls it)."""
    id: str
    kind: str
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    done: int = Field(description="work items finished (frames, images)")
    total: int
    progress: float = Field(description="done / total, 0 to 1")
    error: Optional[str] = None
    result: Optional[str] = Field(None, description="where to download the result once done")


class Error(BaseModel):
    error: str = Field(description="one line naming the field or what to do")
    detail: Optional[List[Dict[str, Any]]] = Field(None, description="each invalid field")
