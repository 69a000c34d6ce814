"""hashguard: on-device PDQ hashing and matching against signed, encrypted hash lists.

Images never leave the device: hashing and matching run locally in a native core.
"""

import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from hashguard.update import ListSource, ListUpdater, UpdateResult

__version__ = version()

# The updater brings in networking and the publisher tools: loaded on first use, so that apps
# and the scan command that never update a list do not pay for it at import.
_LAZY = {"ListSource": "hashguard.update", "ListUpdater": "hashguard.update",
         "UpdateResult": "hashguard.update"}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hashguard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
