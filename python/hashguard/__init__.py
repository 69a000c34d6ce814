"""hashguard: on-device PDQ hashing and matching against signed, encrypted hash lists.

Images never leave the device: hashing and matching run locally in a native core.
"""

from hashguard._native import kernel, version
from hashguard.errors import Error, HashFormatError, ImageError, NativeError
from hashguard.hashing import (
    TRANSFORMS,
    Fingerprint,
    PdqHash,
    fingerprint,
    hash_image,
    hash_many,
)
from hashguard.image import DEFAULT_MAX_PIXELS
from hashguard.index import PdqIndex

__version__ = version()

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "TRANSFORMS",
    "Error",
    "Fingerprint",
    "HashFormatError",
    "ImageError",
    "NativeError",
    "PdqHash",
    "PdqIndex",
    "__version__",
    "fingerprint",
    "hash_image",
    "hash_many",
    "kernel",
]
