"""The exceptions hashguard raises. Every one is a :class:`hashguard.Error`."""

from __future__ import annotations


class Error(Exception):
    """Base class of every error hashguard raises."""


class ImageError(Error):
    """An image could not be hashed: corrupt, truncated, unsupported, oversized or hostile input.

    ``source`` names the input (a path, or a placeholder such as ``<bytes>``) and ``reason``
    says what is wrong with it.
    """

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason

    def __reduce__(self) -> tuple[type[ImageError], tuple[str, str]]:
        return (type(self), (self.source, self.reason))


class HashFormatError(Error, ValueError):
    """Text that should be a PDQ hash is not one (64 hex digits)."""


class NativeError(Error):
    """The native core refused a call; ``status`` is its numeric code (see docs/c-abi.md)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"native status {status}: {message}")
        self.status = status
        self.message = message
