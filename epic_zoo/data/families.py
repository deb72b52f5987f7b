"""The ten OpenFWI-like velocity families: seeded, reproducible generators.

OpenFWI never released its velocity generators (docs/data.md, "Datasets"), so
these are re-creations from the dataset descriptions: FlatVel = flat layers,
CurveVel = curved layers, FlatFault / CurveFault = flat / curved layers cut by
one fault, Style = maps made from natural-image texture, and "B" a harder
version of "A" (more layers, more contrast, more structure). Layer counts,
contrasts, curvatures, throws and texture settings are *our choices*; they are
listed per dataset in :data:`FAMILY_PARAMS` and can be changed by building a
new :class:`LayeredParams` / :class:`StyleParams` and calling
:func:`sample_from_params`.

Parameters per dataset (ranges drawn uniformly per map; cells are 10 m):

============  ======  ==========  =========  ============  ==========  =======
dataset       layers  velocities  contrast   curve amp.    curve wave  throw
============  ======  ==========  =========  ============  ==========  =======
flatvel-a     2-5     increasing  150-700    flat          -           none
flatvel-b     4-8     any order   400-1000   flat          -           none
curvevel-a    2-5     increasing  150-700    2-8 (+-1)     40-140      none
curvevel-b    4-8     any order   400-1000   4-12 (+-2.5)  25-90       none
flatfault-a   2-5     increasing  150-700    flat          -           4-12
flatfault-b   4-8     any order   400-1000   flat          -           6-20
curvefault-a  2-5     increasing  150-700    2-8 (+-1)     40-140      4-12
curvefault-b  4-8     any order   400-1000   4-12 (+-2.5)  25-90       6-20
============  ======  ==========  =========  ============  ==========  =======

Layer velocities: "increasing" starts at 1500-2500 m/s, "any order" at
1500-4500 m/s; contrast is the m/s jump between neighbouring layers; minimum
layer thickness 6 cells (A) / 4 cells (B); faults dip 45-80 degrees.
Style-A: 140-200 pixel crops, rotation up to 30 degrees, blur sigma 1.5-3
cells, texture 600-1100 m/s peak-to-peak on a 1500-2300 -> 3000-4300 m/s depth
trend. Style-B: 70-140 pixel crops, up to 45 degrees, blur 0-0.8 cells,
texture 1200-2200 m/s on a 1500-2500 -> 2800-4500 m/s trend.

Every map is ``[depth z, offset x] = [70, 70]`` float32 in m/s on the 10 m
grid of :mod:`epic_zoo.data.geometry`, with values in ``V_MIN..V_MAX``
(1500..4500 m/s).

Reproducibility: :func:`generate_velocity` draws sample ``i`` from
``np.random.default_rng(np.random.SeedSequence([seed, dataset_id, split_id, i]))``
where ``dataset_id`` is the CRC-32 of the dataset name and ``split_id`` is
``{"train": 0, "val": 1, "test": 2}[split]``, so a sample depends only on
``(dataset, seed, split, i)``, never on which other samples are generated with
it. :data:`GENERATOR_VERSION` changes whenever any output changes.

The Style families read the natural images bundled inside scikit-image
(:data:`STYLE_IMAGES`); they need no network.
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from epic_zoo.data.catalog import get_dataset
from epic_zoo.data.geometry import NX, NZ, V_MAX, V_MIN

GENERATOR_VERSION: str = "1"
"""Version of the generators; stored with every generated HDF5 shard."""

SPLIT_IDS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
"""Split name -> the integer mixed into each sample's seed."""

STYLE_IMAGES: tuple[str, ...] = (
    "camera",
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "brick",
    "grass",
    "gravel",
    "moon",
    "coins",
    "cell",
    "immunohistochemistry",
    "stereo_motorcycle",
)
"""``skimage.data`` images (shipped inside the scikit-image wheel) used as texture
sources by the Style families; ``stereo_motorcycle`` contributes its left view."""


@dataclass(frozen=True)
class LayeredParams:
    """Parameters of a layered family (FlatVel, CurveVel, FlatFault, CurveFault).

    Ranges are inclusive ``(low, high)`` and sampled uniformly per map.

    Attributes:
        layers: number of layers (integers).
        min_thickness: thinnest layer before curving/faulting, grid cells (10 m).
        velocity_order: ``"increasing"``: every layer faster than the one above;
            ``"random"``: each layer faster or slower than the one above.
        top_velocity: velocity of the top layer, m/s (``"increasing"`` order
            lowers it when the layers below would pass ``V_MAX``).
        contrast: velocity jump between neighbouring layers, m/s.
        curve_amplitude: peak depth excursion of the interfaces shared by all
            of them (sum of two sinusoids), cells; ``(0, 0)`` gives flat layers.
        curve_wavelength: wavelength of each sinusoid, cells (no effect on
            flat layers).
        curve_jitter: standard deviation of an extra smooth random (Gaussian,
            correlation length ~8 cells) depth perturbation drawn per
            interface, cells; 0 keeps interfaces parallel.
        fault_throw: vertical offset of the layers across the fault, cells
            (sign drawn at random); ``(0, 0)`` means no fault. Changing only
            this field keeps every other random choice, so the same seed gives
            the same layers with and without the fault.
        fault_dip: fault angle from horizontal, degrees; the fault is a
            straight line through a random point of the central third at
            mid-depth, leaning left or right (no effect without a throw).
        layer_gradient: velocity increase with depth *inside* each layer,
            m/s per cell, drawn per layer (compaction); ``(0, 0)`` keeps
            layers constant. Drawn after every other choice, so the same seed
            gives the same layers with and without it. A layer's gradient is
            lowered so that it never passes ``V_MAX`` and, where velocities
            increase with depth, never rises more than half the step to the
            next layer (every interface stays a jump up); nothing is clipped.
    """

    layers: tuple[int, int]
    min_thickness: int
    velocity_order: str
    top_velocity: tuple[float, float]
    contrast: tuple[float, float]
    curve_amplitude: tuple[float, float] = (0.0, 0.0)
    curve_wavelength: tuple[float, float] = (40.0, 140.0)
    curve_jitter: float = 0.0
    fault_throw: tuple[float, float] = (0.0, 0.0)
    fault_dip: tuple[float, float] = (45.0, 80.0)
    layer_gradient: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        lo, hi = self.layers
        if not 1 <= lo <= hi or hi * self.min_thickness > NZ:
            raise ValueError(
                f"layers={self.layers} with min_thickness={self.min_thickness} does not fit "
                f"{NZ} cells; need 1 <= low <= high and high * min_thickness <= {NZ}"
            )
        if self.velocity_order not in ("increasing", "random"):
            raise ValueError(
                f"velocity_order={self.velocity_order!r}; use 'increasing' or 'random'"
            )
        if not 0 < self.contrast[0] <= self.contrast[1] <= (V_MAX - V_MIN) / 2:
            raise ValueError(
                f"contrast={self.contrast} m/s must satisfy 0 < low <= high <= "
                f"{(V_MAX - V_MIN) / 2:g} so that every layer can find a velocity in range"
            )
        if not V_MIN <= self.top_velocity[0] <= self.top_velocity[1] <= V_MAX:
            raise ValueError(
                f"top_velocity={self.top_velocity} must lie in {V_MIN:g}..{V_MAX:g} m/s"
            )
        if not 0 < self.fault_dip[0] <= self.fault_dip[1] <= 90:
            raise ValueError(f"fault_dip={self.fault_dip} degrees must lie in (0, 90]")
        if not 0 <= self.layer_gradient[0] <= self.layer_gradient[1]:
            raise ValueError(
                f"layer_gradient={self.layer_gradient} m/s per cell must satisfy 0 <= low <= high"
            )


@dataclass(frozen=True)
class StyleParams:
    """Parameters of a Style family: natural-image texture on a depth trend.

    A square of ``crop`` pixels, rotated by up to ``max_rotation`` degrees,
    is cut from one of :data:`STYLE_IMAGES` (grey), resampled to 70 x 70
    (box-averaged, so larger crops are smoother), blurred by ``smoothing``,
    stretched to ``[0, 1]`` (1st..99th percentile, random polarity) and
    added to a linear depth trend:
    ``v = trend(z) + texture_amplitude * (texture - mean)``; a map that leaves
    ``V_MIN..V_MAX`` is squeezed back linearly (not clipped).

    Attributes:
        crop: side of the source square, image pixels.
        max_rotation: largest rotation either way, degrees.
        smoothing: Gaussian sigma on the 70 x 70 map, cells.
        top_velocity: trend velocity at the surface, m/s.
        bottom_velocity: trend velocity at the bottom row, m/s.
        texture_amplitude: peak-to-peak velocity range of the texture, m/s.
    """

    crop: tuple[int, int]
    max_rotation: float
    smoothing: tuple[float, float]
    top_velocity: tuple[float, float]
    bottom_velocity: tuple[float, float]
    texture_amplitude: tuple[float, float]

    def __post_init__(self) -> None:
        if not NX <= self.crop[0] <= self.crop[1] <= 200:
            raise ValueError(
                f"crop={self.crop} pixels must satisfy {NX} <= low <= high <= 200 "
                "(the smallest bundled image is ~300 pixels across)"
            )
        for name in ("top_velocity", "bottom_velocity"):
            lo, hi = getattr(self, name)
            if not V_MIN <= lo <= hi <= V_MAX:
                raise ValueError(f"{name}={(lo, hi)} must lie in {V_MIN:g}..{V_MAX:g} m/s")


FamilyParams = LayeredParams | StyleParams

_A_VELOCITY = {
    "velocity_order": "increasing",
    "top_velocity": (1500.0, 2500.0),
    "contrast": (150.0, 700.0),
}
_B_VELOCITY = {
    "velocity_order": "random",
    "top_velocity": (V_MIN, V_MAX),
    "contrast": (400.0, 1000.0),
}
_A_CURVE = {"curve_amplitude": (2.0, 8.0), "curve_wavelength": (40.0, 140.0), "curve_jitter": 1.0}
_B_CURVE = {"curve_amplitude": (4.0, 12.0), "curve_wavelength": (25.0, 90.0), "curve_jitter": 2.5}

FAMILY_PARAMS: dict[str, FamilyParams] = {
    "flatvel-a": LayeredParams(layers=(2, 5), min_thickness=6, **_A_VELOCITY),
    "flatvel-b": LayeredParams(layers=(4, 8), min_thickness=4, **_B_VELOCITY),
    "curvevel-a": LayeredParams(layers=(2, 5), min_thickness=6, **_A_VELOCITY, **_A_CURVE),
    "curvevel-b": LayeredParams(layers=(4, 8), min_thickness=4, **_B_VELOCITY, **_B_CURVE),
    "flatfault-a": LayeredParams(
        layers=(2, 5), min_thickness=6, **_A_VELOCITY, fault_throw=(4.0, 12.0)
    ),
    "flatfault-b": LayeredParams(
        layers=(4, 8), min_thickness=4, **_B_VELOCITY, fault_throw=(6.0, 20.0)
    ),
    "curvefault-a": LayeredParams(
        layers=(2, 5), min_thickness=6, **_A_VELOCITY, **_A_CURVE, fault_throw=(4.0, 12.0)
    ),
    "curvefault-b": LayeredParams(
        layers=(4, 8), min_thickness=4, **_B_VELOCITY, **_B_CURVE, fault_throw=(6.0, 20.0)
    ),
    "style-a": StyleParams(
        crop=(140, 200),
        max_rotation=30.0,
        smoothing=(1.5, 3.0),
        top_velocity=(1500.0, 2300.0),
        bottom_velocity=(3000.0, 4300.0),
        texture_amplitude=(600.0, 1100.0),
    ),
    "style-b": StyleParams(
        crop=(70, 140),
        max_rotation=45.0,
        smoothing=(0.0, 0.8),
        top_velocity=(1500.0, 2500.0),
        bottom_velocity=(2800.0, 4500.0),
        texture_amplitude=(1200.0, 2200.0),
    ),
}
"""Parameters of each dataset's generator (our choices; OpenFWI did not publish
its own). Keys are the names of :data:`epic_zoo.data.catalog.DATASETS`."""


GENERATORS: tuple[str, ...] = ("default", "wide")
"""The laws a dataset's maps can be drawn with: ``"default"`` (:data:`FAMILY_PARAMS`,
every published dataset and weight) or ``"wide"`` (:data:`WIDE_FAMILY_PARAMS`)."""


def widen(params: FamilyParams) -> FamilyParams:
    """The wider laws of a family (``generator="wide"``), by fixed rules, not tuned.

    Layered families: up to twice the layers, the thinnest 3 cells (half the
    default's, at least 3), contrasts from 50 m/s, the top layer up to 500 m/s
    faster where velocities increase with depth, and a velocity increase of
    0-20 m/s per cell (0-2 s^-1, compaction) inside every layer; curvature,
    faults and velocity order unchanged. Style families: crops from 70 pixels,
    rotations up to 45 degrees, blur from half the low to 1.5x the high sigma,
    texture 0.5x-1.3x the amplitude, a surface velocity down to 1500 m/s and a
    bottom velocity 500 m/s lower to ``V_MAX``.

    What it is for: a model trained on one family's laws fits those laws
    (layer counts, constant layers, velocity ranges) more than the family;
    wider laws of the same family test what that costs on maps from other
    generators (docs/scaling.md, "Maps from other generators").
    """
    if isinstance(params, LayeredParams):
        thin = max(3, params.min_thickness // 2)
        top = params.top_velocity
        if params.velocity_order == "increasing":
            top = (V_MIN, min(V_MAX, top[1] + 500.0))
        return replace(
            params,
            layers=(params.layers[0], min(2 * params.layers[1], NZ // thin)),
            min_thickness=thin,
            contrast=(min(50.0, params.contrast[0]), params.contrast[1]),
            top_velocity=top,
            layer_gradient=(0.0, 20.0),
        )
    lo, hi = params.texture_amplitude
    return replace(
        params,
        crop=(NX, max(params.crop[1], 2 * NX)),
        max_rotation=max(params.max_rotation, 45.0),
        smoothing=(0.5 * params.smoothing[0], 1.5 * params.smoothing[1]),
        texture_amplitude=(0.5 * lo, 1.3 * hi),
        top_velocity=(V_MIN, params.top_velocity[1]),
        bottom_velocity=(max(V_MIN, params.bottom_velocity[0] - 500.0), V_MAX),
    )


WIDE_FAMILY_PARAMS: dict[str, FamilyParams] = {
    name: widen(params) for name, params in FAMILY_PARAMS.items()
}
"""The ``"wide"`` laws of each dataset (:func:`widen` of :data:`FAMILY_PARAMS`)."""


def family_params(dataset: str, generator: str = "default") -> FamilyParams:
    """The laws of ``dataset``'s maps under ``generator`` (one of :data:`GENERATORS`)."""
    name = get_dataset(dataset).name
    if generator == "default":
        return FAMILY_PARAMS[name]
    if generator == "wide":
        return WIDE_FAMILY_PARAMS[name]
    raise ValueError(f"generator={generator!r}; choose one of: {', '.join(GENERATORS)}")


# ---------------------------------------------------------------- layered maps


def _layer_velocities(p: LayeredParams, n: int, rng: np.random.Generator) -> np.ndarray:
    """Velocities of ``n`` layers from top to bottom, ``[n]`` m/s."""
    steps = rng.uniform(*p.contrast, size=n - 1)
    if p.velocity_order == "increasing":
        top = rng.uniform(*p.top_velocity)
        total = steps.sum()
        if top + total > V_MAX:  # lift no layer above V_MAX: lower the top, then shrink steps
            top = max(V_MIN, V_MAX - total)
            steps *= min(1.0, (V_MAX - top) / max(total, 1e-9))
        return top + np.concatenate([[0.0], np.cumsum(steps)])
    velocities = np.empty(n)
    velocities[0] = rng.uniform(*p.top_velocity)
    up = rng.random(n - 1) < 0.5
    for k in range(1, n):
        v = velocities[k - 1]
        can_up = v + steps[k - 1] <= V_MAX
        can_down = v - steps[k - 1] >= V_MIN
        go_up = (up[k - 1] and can_up) or not can_down
        velocities[k] = v + steps[k - 1] if go_up else v - steps[k - 1]
    return velocities


def _interfaces(p: LayeredParams, n: int, rng: np.random.Generator) -> np.ndarray:
    """Depths of the ``n - 1`` interfaces at every column, ``[n - 1, NX]`` cells."""
    thickness = p.min_thickness + rng.dirichlet(np.ones(n)) * (NZ - n * p.min_thickness)
    base = np.cumsum(thickness)[:-1]
    x = np.arange(NX, dtype=np.float64)
    wavelengths = rng.uniform(*p.curve_wavelength, size=2)
    phases = rng.uniform(0.0, 2.0 * math.pi, size=2)
    shared = np.sin(2.0 * math.pi * x[None, :] / wavelengths[:, None] + phases[:, None]).sum(0)
    shared *= rng.uniform(*p.curve_amplitude) / max(np.abs(shared).max(), 1e-9)
    scale = rng.uniform(0.7, 1.3, size=(n - 1, 1))  # interfaces bend alike, not identically
    noise = ndimage.gaussian_filter1d(
        rng.standard_normal((n - 1, NX)), sigma=8.0, axis=1, mode="reflect"
    )
    noise /= max(noise.std(), 1e-9)
    return base[:, None] + scale * shared[None, :] + p.curve_jitter * noise


def _layered_map(p: LayeredParams, rng: np.random.Generator) -> np.ndarray:
    n = int(rng.integers(p.layers[0], p.layers[1] + 1))
    velocities = _layer_velocities(p, n, rng)
    interfaces = _interfaces(p, n, rng)  # [n-1, NX]
    # fault geometry is always drawn so that fault_throw alone decides the fault
    throw = rng.uniform(*p.fault_throw) * rng.choice([-1.0, 1.0])
    dip = math.radians(rng.uniform(*p.fault_dip))
    x0 = rng.uniform(NX / 3, 2 * NX / 3)
    lean = rng.choice([-1.0, 1.0])
    z = np.arange(NZ, dtype=np.float64)[:, None]
    x = np.arange(NX, dtype=np.float64)[None, :]
    fault_x = x0 + lean * (z - NZ / 2) / math.tan(dip)  # [NZ, 1] fault column at each depth
    depth = np.where(x > fault_x, z - throw, z)  # hanging wall sees layers shifted by the throw
    labels = (depth[None, :, :] >= interfaces[:, None, :]).sum(axis=0)  # [NZ, NX] layer index
    velocity = velocities[labels]
    if p.layer_gradient != (0.0, 0.0):  # drawn last: every choice above stays the same
        gradient = rng.uniform(*p.layer_gradient, size=n)
        columns = np.broadcast_to(np.arange(NX), labels.shape)
        tops = np.where(labels > 0, interfaces[np.maximum(labels - 1, 0), columns], 0.0)
        below = np.maximum(depth - tops, 0.0)  # cells below the layer's top, moving with its block
        extent = np.zeros(n)
        np.maximum.at(extent, labels.ravel(), below.ravel())
        room = V_MAX - velocities  # never past V_MAX ...
        if p.velocity_order == "increasing":  # ... nor past half the step to the next layer
            room[:-1] = np.minimum(room[:-1], 0.5 * np.diff(velocities))
        gradient = np.minimum(gradient, room / np.maximum(extent, 1.0))
        velocity = velocity + gradient[labels] * below
    return velocity


# ------------------------------------------------------------------ style maps


@functools.lru_cache(maxsize=1)
def _style_images() -> tuple[np.ndarray, ...]:
    """The :data:`STYLE_IMAGES` as grey ``[H, W]`` float32 in ``[0, 1]`` (loaded once)."""
    import skimage.data
    from skimage.color import rgb2gray

    images = []
    for name in STYLE_IMAGES:
        image = getattr(skimage.data, name)()
        if isinstance(image, tuple):  # stereo pair: keep the left view
            image = image[0]
        image = np.asarray(image)
        grey = rgb2gray(image[..., :3]) if image.ndim == 3 else image / 255.0
        images.append(np.ascontiguousarray(grey, dtype=np.float32))
    return tuple(images)


def _style_map(p: StyleParams, rng: np.random.Generator) -> np.ndarray:
    images = _style_images()
    image = images[int(rng.integers(len(images)))]
    height, width = image.shape
    crop = rng.uniform(*p.crop)
    angle = math.radians(rng.uniform(-p.max_rotation, p.max_rotation))
    half = crop / math.sqrt(2.0)  # keep the rotated square inside the image
    centre_z = rng.uniform(min(half, height / 2), max(height - half, height / 2))
    centre_x = rng.uniform(min(half, width / 2), max(width - half, width / 2))
    # supersample then box-average: the anti-aliased resize of the rotated crop
    factor = max(1, math.ceil(crop / NZ))
    m = NZ * factor
    u = (np.arange(m) + 0.5) / m - 0.5  # [-0.5, 0.5) across the crop
    uz, ux = np.meshgrid(u * crop, u * crop, indexing="ij")
    cos, sin = math.cos(angle), math.sin(angle)
    coords = np.stack([centre_z + cos * uz - sin * ux, centre_x + sin * uz + cos * ux])
    fine = ndimage.map_coordinates(image, coords, order=1, mode="reflect")
    texture = fine.reshape(NZ, factor, NX, factor).mean(axis=(1, 3))
    sigma = rng.uniform(*p.smoothing)
    if sigma > 0:
        texture = ndimage.gaussian_filter(texture, sigma, mode="reflect")
    lo, hi = np.percentile(texture, [1.0, 99.0])
    texture = np.clip((texture - lo) / max(hi - lo, 1e-3), 0.0, 1.0)
    if rng.random() < 0.5:
        texture = 1.0 - texture
    top = rng.uniform(*p.top_velocity)
    bottom = max(top, rng.uniform(*p.bottom_velocity))
    trend = top + (bottom - top) * np.arange(NZ, dtype=np.float64)[:, None] / (NZ - 1)
    amplitude = rng.uniform(*p.texture_amplitude)
    velocity = trend + amplitude * (texture - texture.mean())
    # squeeze (never clip) into V_MIN..V_MAX so no flat saturated patches appear
    lo, hi = min(velocity.min(), V_MIN), max(velocity.max(), V_MAX)
    return V_MIN + (velocity - lo) * ((V_MAX - V_MIN) / (hi - lo))


# ------------------------------------------------------------------ public API


def sample_from_params(params: FamilyParams, rng: np.random.Generator) -> np.ndarray:
    """Draw one velocity map from explicit family parameters.

    Args:
        params: a :class:`LayeredParams` or :class:`StyleParams`, e.g.
            ``dataclasses.replace(FAMILY_PARAMS["flatvel-a"], layers=(3, 3))``.
        rng: the random generator to draw from (advanced in place).

    Returns:
        ``[depth z, offset x] = [70, 70]`` float32 velocity in m/s, within
        ``V_MIN..V_MAX``.
    """
    if isinstance(params, LayeredParams):
        velocity = _layered_map(params, rng)
    elif isinstance(params, StyleParams):
        velocity = _style_map(params, rng)
    else:
        raise TypeError(
            f"params must be LayeredParams or StyleParams, got {type(params).__name__}; "
            "start from an entry of FAMILY_PARAMS"
        )
    return np.clip(velocity, V_MIN, V_MAX).astype(np.float32)


def sample_velocity(
    dataset: str, rng: np.random.Generator, generator: str = "default"
) -> np.ndarray:
    """Draw one velocity map of ``dataset`` from ``rng``.

    Args:
        dataset: a name from :data:`epic_zoo.data.catalog.DATASETS` (or its
            OpenFWI spelling, e.g. ``"FlatVel-A"``); unknown names raise
            ``KeyError`` listing the valid ones.
        rng: the random generator to draw from (advanced in place).
        generator: the laws, ``"default"`` or ``"wide"`` (:func:`family_params`).

    Returns:
        ``[depth z, offset x] = [70, 70]`` float32 velocity in m/s.
    """
    return sample_from_params(family_params(dataset, generator), rng)


def sample_seed(
    dataset: str, index: int, seed: int = 0, split: str = "train"
) -> np.random.SeedSequence:
    """The seed sequence of sample ``index`` of ``(dataset, seed, split)``."""
    name = get_dataset(dataset).name
    if split not in SPLIT_IDS:
        raise ValueError(f"unknown split {split!r}; choose one of: {', '.join(SPLIT_IDS)}")
    if int(seed) < 0 or int(index) < 0:
        raise ValueError(f"seed={seed} and index={index} must be non-negative integers")
    return np.random.SeedSequence(
        [int(seed), zlib.crc32(name.encode()), SPLIT_IDS[split], int(index)]
    )


def generate_velocity(
    dataset: str,
    indices: Sequence[int],
    seed: int = 0,
    split: str = "train",
    generator: str = "default",
) -> np.ndarray:
    """Velocity maps ``indices`` of ``(dataset, seed, split)``.

    Sample ``i`` is a pure function of ``(dataset, seed, split, i)`` (see
    :func:`sample_seed`): ``generate_velocity(d, [5])[0]`` equals
    ``generate_velocity(d, range(10))[5]``.

    Args:
        dataset: dataset name (``KeyError`` if unknown).
        indices: non-negative sample indices, any order.
        seed: non-negative base seed.
        split: ``"train"``, ``"val"`` or ``"test"``.
        generator: the laws, ``"default"`` or ``"wide"`` (:func:`family_params`);
            both draw sample ``i`` from the same seed sequence.

    Returns:
        ``[len(indices), 1, 70, 70]`` float32 velocity in m/s.
    """
    name = get_dataset(dataset).name
    params = family_params(name, generator)
    out = np.empty((len(indices), 1, NZ, NX), dtype=np.float32)
    for row, index in enumerate(indices):
        rng = np.random.default_rng(sample_seed(name, int(index), seed, split))
        out[row, 0] = sample_from_params(params, rng)
    return out
