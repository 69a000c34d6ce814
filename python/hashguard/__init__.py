"""hashguard: on-device PDQ hashing and matching against signed, encrypted hash lists.

Images never leave the device: hashing and matching run locally in a native core.
"""

from hashguard._native import kernel, version
from hashguard.errors import (
    BadSignature,
    Error,
    HashFormatError,
    ImageError,
    ListError,
    ListExpired,
    ListMalformed,
    ListTooLarge,
    NativeError,
    NoContentKey,
    Rollback,
    UntrustedKey,
    WrongBase,
    WrongList,
)
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
from hashguard.lists import HashList, ListMatch

__version__ = version()

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "TRANSFORMS",
    "BadSignature",
    "Error",
    "Fingerprint",
    "HashFormatError",
    "HashList",
    "ImageError",
    "ListError",
    "ListExpired",
    "ListMalformed",
    "ListMatch",
    "ListTooLarge",
    "NativeError",
    "NoContentKey",
    "PdqHash",
    "PdqIndex",
    "Rollback",
    "UntrustedKey",
    "WrongBase",
    "WrongList",
    "__version__",
    "fingerprint",
    "hash_image",
    "hash_many",
    "kernel",
]
