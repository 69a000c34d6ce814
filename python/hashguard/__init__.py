"""hashguard: on-device PDQ hashing and matching against signed, encrypted hash lists.

Images never leave the device: hashing and matching run locally in a native core.
"""

from hashguard._native import kernel, version
from hashguard.errors import (
    BadResponse,
    BadSignature,
    Error,
    FetchError,
    FetchTimeout,
    HashFormatError,
    HttpStatusError,
    ImageError,
    ListError,
    ListExpired,
    ListMalformed,
    ListTooLarge,
    NativeError,
    NoContentKey,
    NoList,
    NotAnImage,
    Rollback,
    StateError,
    UntrustedKey,
    UpdateError,
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
from hashguard.scan import Match, Scanner, ScanResult
from hashguard.update import ListSource, ListUpdater, UpdateResult

__version__ = version()

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "TRANSFORMS",
    "BadResponse",
    "BadSignature",
    "Error",
    "FetchError",
    "FetchTimeout",
    "Fingerprint",
    "HashFormatError",
    "HashList",
    "HttpStatusError",
    "ImageError",
    "ListError",
    "ListExpired",
    "ListMalformed",
    "ListMatch",
    "ListSource",
    "ListTooLarge",
    "ListUpdater",
    "Match",
    "NativeError",
    "NoContentKey",
    "NoList",
    "NotAnImage",
    "PdqHash",
    "PdqIndex",
    "Rollback",
    "ScanResult",
    "Scanner",
    "StateError",
    "UntrustedKey",
    "UpdateError",
    "UpdateResult",
    "WrongBase",
    "WrongList",
    "__version__",
    "fingerprint",
    "hash_image",
    "hash_many",
    "kernel",
]
