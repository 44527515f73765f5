"""Image decoding and the two preprocessing modes.

``reference``: what the Exp-CLIP reference code feeds both CLIP and BLIP-2 — squash-resize to a square
(bilinear), scale to [0,1], no mean/std normalization, no crop.
``clip``: the model's own processor, whatever its family (the name is CLIP's) — read from its
``preprocessor_config.json``: CLIP resizes the short side (bicubic) and center-crops; SigLIP and BLIP squash to a
square; SigLIP 2 NaFlex squashes to the square its patch budget gives a square image; ALIGN's EfficientNet processor
may squash then crop and rescale to [-1, 1]; then scale and normalize by mean/std as configured.
Heads trained one way must be evaluated the same way, so the mode travels with stores and heads.
"""

from __future__ import annotations

import math
import stat
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ImageDecodeError, InputError, ModelNotAvailableError
from ..schema import Fields, is_int, is_number, read_json

if TYPE_CHECKING:  # numpy, torch and PIL are imported where they are used: the names above cost no import
    import torch
    from PIL import Image

PREPROCESSING_MODES = ("reference", "clip")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".pbm",
                    ".pnm")  # every suffix of IMAGE_FORMATS' files (PPM covers the Netpbm family)

# Images above this many pixels are refused (decompression bombs); 20000x20000 is 4e8.
MAX_IMAGE_PIXELS = 178_956_970
# The only decoders PIL may use: plain raster formats. Others (EPS runs Ghostscript, exotic plugins) are refused
# whatever a file's name says, since dataset files come from strangers.
IMAGE_FORMATS = ("JPEG", "PNG", "BMP", "WEBP", "TIFF", "GIF", "PPM")  # JPEG includes MPO (phone photos)
# In "clip" mode the image is resized whole, then cropped, exactly as transformers' processor does, up to this many
# resized pixels; beyond (a 1x20000 sliver would become 224x4,480,000 pixels) only the crop window is resampled.
MAX_RESIZED_PIXELS = 1 << 24
BILINEAR, BICUBIC = 2, 3  # PIL.Image.Resampling codes (stable since PIL 1.1)
# Model inputs larger than this are refused before anything is allocated: CLIP-family encoders take 224-1024
# pixels, and one 30000x30000 float image alone is 10 GB.
MAX_INPUT_SIZE = 4096
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _file_kind(mode: int) -> str:
    return {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device",
            stat.S_IFBLK: "a block device", stat.S_IFDIR: "a folder"}.get(stat.S_IFMT(mode), "not a plain file")


def to_rgb(img: Image.Image, name: str | Path = "image") -> Image.Image:
    """Any PIL mode (L, P, RGBA, CMYK, I;16, I, F, LA...) to 8-bit RGB; transparency is composited on white.

    Wide integer and float images are scaled by their range: 16-bit by 65535; floats in 0..1 (HDR and scientific
    TIFFs) by 1, in 0..255 by 255, above that by 65535 or their maximum. NaN/Inf pixels become 0; an image with no
    finite pixel is an ImageDecodeError naming ``name``.
    """
    import numpy as np
    from PIL import Image

    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        finite = np.isfinite(arr)
        if not finite.any():
            raise ImageDecodeError(name, "no finite pixel (every value is NaN or infinite)")
        arr = np.where(finite, arr, 0.0)
        top = float(arr.max())
        if img.mode.startswith("I;16"):
            hi = 65535.0
        elif img.mode == "F" and top <= 1.0:
            hi = 1.0
        else:
            hi = 255.0 if top <= 255 else 65535.0 if top <= 65535 else top
        arr = np.clip(arr / hi * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa"):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    return img.convert("RGB")


def load_image(path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Decode an image file to RGB, applying its EXIF orientation.

    Raises:
        ImageDecodeError: empty, truncated, non-image, too large (decompression bomb) or unreadable files.
    """
    from PIL import Image, ImageOps

    path = Path(path)
    try:
        st = path.stat()
    except OSError as e:
        raise ImageDecodeError(path, f"cannot open ({e.strerror or e})") from e
    if not stat.S_ISREG(st.st_mode):  # a FIFO would block the reader forever, a device never end
        raise ImageDecodeError(path, f"not a regular file ({_file_kind(st.st_mode)}): skipped")
    if st.st_size == 0:
        raise ImageDecodeError(path, "empty file (0 bytes)")
    try:
        with Image.open(path, formats=IMAGE_FORMATS) as im:
            # Our own bound, checked per call: PIL's DecompressionBombWarning between its limit and twice it is only
            # a warning, and switching the warnings filter to make it an error is not thread-safe (decoding threads
            # would see each other's filter and refuse valid images).
            w, h = im.size
            if w * h > max_pixels:
                raise ImageDecodeError(path, f"image is {w}x{h} pixels, over the {max_pixels:,} limit (decompression bomb guard)")
            im.load()
            im = ImageOps.exif_transpose(im)
            return to_rgb(im, path)
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageDecodeError(path, f"decompression bomb guard: {e}") from e
    except Image.UnidentifiedImageError:
        raise ImageDecodeError(path, "not a recognised image format") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise ImageDecodeError(path, f"corrupt or truncated image ({type(e).__name__}: {e})") from e
    except Exception as e:  # PIL's decoders raise anything on malformed input; one bad file must not end the run
        raise ImageDecodeError(path, f"undecodable image ({type(e).__name__}: {e})") from e


@dataclass(frozen=True)
class Preprocess:
    """A picklable image -> tensor transform (it runs in DataLoader workers).

    mode "reference": squash-resize to ``image_size`` (bilinear), [0,1], nothing else.
    mode "clip": the model's processor — resize the short side to ``resize`` (or, with ``squash_before_crop``,
    squash to ``resize`` x ``resize``) and center crop ``image_size`` when ``crop`` (CLIP), else squash-resize to
    ``image_size`` (SigLIP, BLIP); ``resample`` is a PIL filter code; pixel values are scaled by ``rescale_factor``
    (1/255: [0,1]), then normalized with ``mean``/``std``.
    """

    mode: str = "reference"
    image_size: int = 224
    resize: int = 224
    crop: bool = False
    resample: int = BILINEAR
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    # Added for other families' processors; describe() leaves them out at their defaults, so that the keys of
    # stores made before them (CLIP, BLIP) are unchanged.
    squash_before_crop: bool = False
    rescale_factor: float = 1 / 255

    def __post_init__(self) -> None:
        if self.mode not in PREPROCESSING_MODES:
            raise InputError(f"unknown preprocessing mode {self.mode!r}; choose one of {PREPROCESSING_MODES}")
        for name in ("image_size", "resize"):
            check_size(getattr(self, name), name, "the preprocessing")

    def __call__(self, img: Image.Image) -> torch.Tensor:
        """PIL RGB image -> float32 tensor (3, image_size, image_size)."""
        import torch

        if self.crop and self.squash_before_crop:
            img = center_crop(img.resize((self.resize, self.resize), self.resample), self.image_size)
        elif self.crop:
            img = resize_and_crop(img, self.resize, self.image_size, self.resample)
        else:
            img = img.resize((self.image_size, self.image_size), self.resample)
        t = pil_to_tensor01(img)
        if not math.isclose(self.rescale_factor, 1 / 255, rel_tol=1e-12):
            t = t.mul_(self.rescale_factor * 255.0)
        if self.mean is not None and self.std is not None:
            mean = torch.tensor(self.mean, dtype=torch.float32).view(3, 1, 1)
            std = torch.tensor(self.std, dtype=torch.float32).view(3, 1, 1)
            t = (t - mean) / std
        return t

    def describe(self) -> dict:
        """What is recorded in store keys and head configs (fields added later only where they are not default). A
        short-side resize and center crop says which rule made it: stores made before it matched transformers'
        processor at every aspect ratio (the long side trimmed beyond 4:1) do not match."""
        d = asdict(self)
        for f in fields(self):
            if f.name in _LATER_FIELDS and d[f.name] == f.default:
                del d[f.name]
        return {**d, "crop_rule": "transformers"} if self.crop and not self.squash_before_crop else d


_LATER_FIELDS = ("squash_before_crop", "rescale_factor")


def pil_to_tensor01(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> (3,H,W) float32 in [0,1]."""
    import numpy as np
    import torch

    arr = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def short_side_size(w: int, h: int, size: int) -> tuple[int, int]:
    """(width, height) with the short side ``size`` and the long side scaled and truncated to int (CLIP's rule,
    transformers' ``get_resize_output_image_size``)."""
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(size * long / short)
    return (size, new_long) if w <= h else (new_long, size)


def resize_short_side(img: Image.Image, size: int, resample: int = BICUBIC) -> Image.Image:
    """Resize so that the short side is ``size`` (CLIP's rule; the long side is truncated to int)."""
    return img.resize(short_side_size(*img.size, size), resample)


def resize_and_crop(img: Image.Image, resize: int, size: int, resample: int = BICUBIC) -> Image.Image:
    """CLIP's processor: the short side resized to ``resize``, then a ``size`` x ``size`` center crop.

    The whole image is resized and then cropped, as transformers does, so the result is its pixels exactly at any
    aspect ratio. Only when the resized image would exceed :data:`MAX_RESIZED_PIXELS` (slivers beyond ~300:1) is
    just the crop window resampled, at the full image's scale (PIL's box): the same up to rounding at a few pixels.
    """
    new_w, new_h = short_side_size(*img.size, resize)
    if new_w * new_h <= MAX_RESIZED_PIXELS:
        return center_crop(img.resize((new_w, new_h), resample), size)
    (x0, x1), (y0, y1) = (((n - size) // 2, (n - size) // 2 + size) if n >= size else (0, n) for n in (new_w, new_h))
    sx, sy = img.width / new_w, img.height / new_h
    return center_crop(img.resize((x1 - x0, y1 - y0), resample, box=(x0 * sx, y0 * sy, x1 * sx, y1 * sy)), size)


def center_crop(img: Image.Image, size: int) -> Image.Image:
    """Center crop to size x size, padding with black if the image is smaller (transformers' rule: the crop starts
    at floor((n - size) / 2), a smaller side is placed at ceil((size - n) / 2))."""
    from PIL import Image

    w, h = img.size
    if w < size or h < size:
        canvas = Image.new("RGB", (max(w, size), max(h, size)))
        canvas.paste(img, ((max(w, size) - w + 1) // 2, (max(h, size) - h + 1) // 2))
        img, (w, h) = canvas, canvas.size
    left, top = (w - size) // 2, (h - size) // 2
    return img.crop((left, top, left + size, top + size))


def check_size(value: object, name: str, source: str | Path) -> int:
    """An image side length from a config (``name`` in ``source``): an integer in 1..MAX_INPUT_SIZE, or an
    InputError naming both."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INPUT_SIZE:
        raise InputError(f"{source}: {name} {value!r} is not an image size expclip uses (1..{MAX_INPUT_SIZE} pixels; "
                         "CLIP-family models take 224-1024): fix the file")
    return value


def preprocess_for_model(model_dir: str | Path, mode: str, vision_image_size: int) -> Preprocess:
    """The :class:`Preprocess` of a model directory for ``mode``.

    "reference" ignores the model's processor (square ``vision_image_size``, bilinear, [0,1]: 224 for the paper's
    models); "clip" follows its ``preprocessor_config.json``: CLIP short side + center crop, a ``height``/``width``
    size squashes (SigLIP, BLIP; then center-crops where ``do_center_crop``), a NaFlex ``max_num_patches`` budget
    squashes to ``patch_size · ⌊√max_num_patches⌋`` (what the processor gives a square image), and EfficientNet's
    ``rescale_offset`` / ``include_top`` fold into the mean and std.
    """
    check_size(vision_image_size, "image_size", Path(model_dir) / "config.json")
    if mode == "reference":
        return Preprocess("reference", vision_image_size, vision_image_size)
    if mode != "clip":
        raise InputError(f"unknown preprocessing mode {mode!r}; choose one of {PREPROCESSING_MODES}")
    cfg_path = Path(model_dir) / "preprocessor_config.json"
    cfg = read_json(cfg_path, ModelNotAvailableError, "image processor config") if cfg_path.is_file() else {}
    check_processor_config(cfg, cfg_path)
    resample = int(cfg.get("resample", BICUBIC))
    if "max_num_patches" in cfg:  # SigLIP 2 NaFlex: the side its patch budget gives a square image
        side = check_size(int(cfg.get("patch_size", 16)) * math.isqrt(int(cfg["max_num_patches"])),
                          "patch_size · √max_num_patches", cfg_path)
        mean, std, factor = _normalization(cfg)
        return Preprocess("clip", side, side, False, resample, mean, std, rescale_factor=factor)
    size = cfg.get("size", {"shortest_edge": vision_image_size})
    if not isinstance(size, dict):
        size = {"shortest_edge": int(size)}
    squash = "shortest_edge" not in size
    if squash and int(size.get("height", 0)) != int(size.get("width", size.get("height", 0))):
        raise InputError(f"{cfg_path}: a non-square resize {size} is not supported (features are square images)")
    crop = bool(cfg.get("do_center_crop", not squash))
    key = "shortest_edge" if "shortest_edge" in size else "height"
    resize = check_size(size.get(key, vision_image_size), f"size.{key}", cfg_path)
    crop_cfg = cfg.get("crop_size", {"height": vision_image_size})
    crop_size = check_size(crop_cfg.get("height", vision_image_size) if isinstance(crop_cfg, dict) else crop_cfg,
                           "crop_size", cfg_path)
    image_size = crop_size if crop else resize
    mean, std, factor = _normalization(cfg)
    return Preprocess("clip", image_size, resize, crop, resample, mean, std, squash_before_crop=squash and crop,
                      rescale_factor=factor)


def check_processor_config(cfg: object, source: str | Path) -> dict:
    """The schema of a ``preprocessor_config.json``: the fields :func:`preprocess_for_model` reads, typed (sizes
    in 1..MAX_INPUT_SIZE, flags true/false, three finite means and positive stds, a PIL filter code); a wrong shape
    is a ModelNotAvailableError naming the file and the field."""
    f = Fields(cfg, source, ModelNotAvailableError)
    for key in ("size", "crop_size"):
        value = f.get(key, None)
        if value is None or is_int(value):
            f.int(key, None, lo=1, hi=MAX_INPUT_SIZE)
            continue
        if not isinstance(value, dict):
            raise f.fail(key, "an integer or an object {shortest_edge | height, width}", value)
        g = f.obj(key)
        for k in ("shortest_edge", "longest_edge", "height", "width"):
            g.int(k, None, lo=1, hi=MAX_INPUT_SIZE)
    for key in ("do_center_crop", "do_normalize", "do_rescale", "rescale_offset", "include_top"):
        f.bool(key, None)
    for key in ("image_mean", "image_std"):
        values = f.list(key, None, lambda v: is_number(v) and (key == "image_mean" or v > 0),
                        "a list of 3 finite numbers" + (" > 0" if key == "image_std" else ""), 3)
        if values is not None and len(values) != 3:
            raise f.fail(key, "a list of 3 numbers (R, G, B)", values)
    f.int("resample", None, lo=0, hi=5)
    f.number("rescale_factor", None, lo=1e-12)
    f.int("patch_size", None, lo=1, hi=MAX_INPUT_SIZE)
    f.int("max_num_patches", None, lo=1, hi=1 << 20)
    f.str("image_processor_type", None)
    return cfg  # type: ignore[return-value]


def _normalization(cfg: dict) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None, float]:
    """(mean, std, rescale factor) with ``t = (x · factor − mean) / std`` equal to the processor's steps: rescale
    (EfficientNet: minus 1 with ``rescale_offset``), normalize, and EfficientNet's ``include_top`` (a second
    division by std). ``(None, None)`` when nothing is subtracted or divided."""
    factor = float(cfg.get("rescale_factor", 1 / 255)) if cfg.get("do_rescale", True) else 1.0
    normalize = cfg.get("do_normalize", True)
    m = [float(x) for x in cfg.get("image_mean", OPENAI_CLIP_MEAN)] if normalize else [0.0, 0.0, 0.0]
    s = [float(x) for x in cfg.get("image_std", OPENAI_CLIP_STD)] if normalize else [1.0, 1.0, 1.0]
    offset = 1.0 if cfg.get("rescale_offset", False) else 0.0
    # include_top exists only in EfficientNet's processor, where it defaults to True
    include_top = bool(cfg.get("include_top", str(cfg.get("image_processor_type", "")).startswith("EfficientNet")))
    top = [float(x) for x in cfg.get("image_std", OPENAI_CLIP_STD)] if include_top else [1.0] * 3
    mean = tuple(offset + mi for mi in m)
    std = tuple(si * ti for si, ti in zip(s, top))
    if not normalize and not offset and not include_top:
        return None, None, factor
    return mean, std, factor
