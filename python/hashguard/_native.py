"""Loads the native core through cffi and turns its status codes into exceptions.

cffi releases the GIL for the duration of every call into the library, so hashing in threads
runs in parallel.
"""

from __future__ import annotations

from typing import Any

from hashguard._cffi import ffi, lib
from hashguard.errors import (
    BadSignature,
    HashFormatError,
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

__all__ = ["check", "ffi", "kernel", "lib", "version"]

OK = 0
PARSE_ERROR = 4
OUTPUT_TOO_SMALL = 5
IO_ERROR = 6

# hg_status values of list refusals (native/include/hashguard.h).
_LIST_ERRORS = {
    10: ListMalformed,
    11: ListTooLarge,
    12: UntrustedKey,
    13: BadSignature,
    14: WrongList,
    15: Rollback,
    16: ListExpired,
    17: NoContentKey,
    18: WrongBase,
}


def last_error() -> str:
    size = lib.hg_last_error_message(ffi.NULL, 0)
    buf = ffi.new("char[]", size + 1)
    lib.hg_last_error_message(buf, size + 1)
    return str(ffi.string(buf).decode("utf-8", "replace"))


def check(status: Any) -> None:
    """Raises the exception matching a non-zero status, with the native message."""
    code = int(status)
    if code == OK:
        return
    message = last_error()
    if code == PARSE_ERROR:
        raise HashFormatError(message)
    if code == IO_ERROR:
        raise OSError(message)
    if code in _LIST_ERRORS:
        raise _LIST_ERRORS[code](message)
    raise NativeError(code, message)


def version() -> str:
    return str(ffi.string(lib.hg_version()).decode())


def kernel() -> str:
    """The PDQ kernel the native core picked for this CPU (``avx2`` or ``portable``)."""
    return str(ffi.string(lib.hg_pdq_kernel()).decode())
