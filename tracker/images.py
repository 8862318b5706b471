"""Photo validation with Pillow: only real JPEG, PNG or WebP images, at most 5 MiB,
at most 40 megapixels; makes a JPEG thumbnail. Errors are sentences for people."""
from io import BytesIO

from PIL import Image, UnidentifiedImageError

MAX_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 40_000_000
TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
THUMB = (320, 320)


class BadImage(ValueError):
    pass


def process(data: bytes) -> dict:
    if not data:
        raise BadImage("Choose a photo to upload.")
    if len(data) > MAX_BYTES:
        raise BadImage(f"That photo is {len(data) / 2**20:.1f} MiB; the limit is 5 MiB.")
    try:
        with Image.open(BytesIO(data)) as probe:
            fmt = probe.format
            probe.verify()
        with Image.open(BytesIO(data)) as img:
            if fmt not in TYPES:
                raise BadImage("Only JPEG, PNG or WebP photos can be uploaded.")
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise BadImage("That photo has too many pixels (over 40 megapixels).")
            img.thumbnail(THUMB)
            thumb = img.convert("RGB")
            out = BytesIO()
            thumb.save(out, "JPEG", quality=82)
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise BadImage("That file is not a readable JPEG, PNG or WebP image.") from exc
    return {"content_type": TYPES[fmt], "width": width, "height": height, "image": data,
            "thumbnail": out.getvalue()}


def swatch(colour: tuple[int, int, int], size=(640, 480)) -> bytes:
    """A plain PNG swatch (demo data)."""
    img = Image.new("RGB", size, colour)
    out = BytesIO()
    img.save(out, "PNG")
    return out.getvalue()
