"""Photo validation with Pillow: only real JPEG, PNG or WebP images, at most 5 MiB,
at most 40 megapixels, 8 bits per channel; makes a JPEG thumbnail. Errors are
sentences for people.

Everything that bounds memory is checked *before* any pixel is decoded: Pillow's
open() reads only the header, so size, mode and (for PNG) the bit depth are known
while nothing has been decompressed. A small file can declare a huge image."""
import warnings
from io import BytesIO

from PIL import Image, ImageFile, UnidentifiedImageError

MAX_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 40_000_000
TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
# modes with more than 8 bits per channel (a 16-bit PNG decodes to twice the memory)
WIDE_MODES = {"I", "F", "I;16", "I;16B", "I;16L", "I;16N", "RGB;16", "RGBA;16"}
THUMB = (320, 320)
# Pillow's own decompression-bomb guard as a second line: it raises above twice this
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class BadImage(ValueError):
    pass


def png_bit_depth(data: bytes) -> int | None:
    """Bits per channel from a PNG's IHDR chunk (the first chunk, by the spec)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 25:
        return data[24]
    return None


def check_header(img: Image.Image, data: bytes) -> None:
    """Refuse, from the header alone, what would be expensive to decode."""
    if img.format not in TYPES:
        raise BadImage("Only JPEG, PNG or WebP photos can be uploaded.")
    width, height = img.size
    if width < 1 or height < 1 or width * height > MAX_PIXELS:
        raise BadImage(f"That photo is {width} x {height} pixels; the limit is 40 megapixels. "
                       "Save a smaller copy and upload that.")
    if img.mode in WIDE_MODES or (img.format == "PNG" and (png_bit_depth(data) or 8) > 8):
        raise BadImage("That photo uses 16 bits per colour channel; save it as an ordinary 8-bit "
                       "JPEG or PNG and upload that.")


def process(data: bytes) -> dict:
    if not data:
        raise BadImage("Choose a photo to upload.")
    if len(data) > MAX_BYTES:
        raise BadImage(f"That photo is {len(data) / 2**20:.1f} MiB; the limit is 5 MiB.")
    try:
        with warnings.catch_warnings():  # above the limit Pillow warns; check_header refuses it anyway
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            probe = Image.open(BytesIO(data))  # header only
        with probe:
            fmt = probe.format
            check_header(probe, data)
            probe.verify()  # structure and checksums, without decoding pixels
        # WeasyPrint sets Pillow's global LOAD_TRUNCATED_IMAGES = True when it is imported (the first
        # printed tag): a truncated photo would then decode, padded with grey, and be stored.
        # Our tags hold no raster image, so decoding stays strict for everyone (tests/test_fuzz_uploads.py).
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        with Image.open(BytesIO(data)) as img:
            check_header(img, data)
            width, height = img.size
            img.thumbnail(THUMB)  # decodes (JPEG at a reduced scale)
            thumb = img.convert("RGB")
            out = BytesIO()
            thumb.save(out, "JPEG", quality=82)
    except Image.DecompressionBombError as exc:  # Pillow's own limit (twice ours), raised by open()
        raise BadImage("That photo has far too many pixels; the limit is 40 megapixels. "
                       "Save a smaller copy and upload that.") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, BadImage):
            raise
        raise BadImage("That file is not a readable JPEG, PNG or WebP image.") from exc
    return {"content_type": TYPES[fmt], "width": width, "height": height, "image": data,
            "thumbnail": out.getvalue()}


def swatch(colour: tuple[int, int, int], size=(640, 480)) -> bytes:
    """A plain PNG swatch (demo data)."""
    img = Image.new("RGB", size, colour)
    out = BytesIO()
    img.save(out, "PNG")
    return out.getvalue()
