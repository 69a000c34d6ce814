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


class NotAnImage(ImageError):
    """The input is not in any image format hashguard decodes (a scanner still checks its exact
    hashes)."""


class HashFormatError(Error, ValueError):
    """Text that should be a PDQ hash is not one (64 hex digits)."""


class NativeError(Error):
    """The native core refused a call; ``status`` is its numeric code (see docs/c-abi.md)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"native status {status}: {message}")
        self.status = status
        self.message = message


class ListError(Error):
    """A list bundle was refused. The subclass says why; nothing from the bundle was used."""


class ListMalformed(ListError):
    """Truncated, not a bundle, an unknown format version, or malformed contents."""


class ListTooLarge(ListError):
    """Over the configured size caps (refused before reading or allocating)."""


class UntrustedKey(ListError):
    """Signed by a key no trusted root certifies, or outside its certificate's validity."""


class BadSignature(ListError):
    """The signature does not verify: the bundle was altered."""


class WrongList(ListError):
    """A bundle for another list."""


class Rollback(ListError):
    """Not newer than the installed version."""


class ListExpired(ListError):
    """Past its expiry time, and stale lists are not allowed."""


class NoContentKey(ListError):
    """No configured content key opens the bundle."""


class WrongBase(ListError):
    """A delta for a different version than the one it is applied to."""


class NoList(Error):
    """No usable list: nothing good in the state directory and no update has succeeded yet (or
    the list expired and stale lists are not used). Scanning cannot start until one arrives."""


class UpdateError(Error):
    """A list update failed; the last good list stays in use. The subclass says where."""


class FetchError(UpdateError):
    """A bundle could not be downloaded: the server could not be reached, answered with an
    unexpected status, or did not send a bundle. ``url`` is the configured address and
    ``status`` the HTTP status, when there was one."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        self.status = status

    def __reduce__(self) -> tuple[type[FetchError], tuple[str, str, int | None]]:
        return (type(self), (self.url, self.reason, self.status))


class FetchTimeout(FetchError):
    """The connection, a read, or the whole download took longer than its limit."""


class HttpStatusError(FetchError):
    """The server answered with a status other than 200 or 304 (redirects are not followed)."""


class BadResponse(FetchError):
    """The server's answer is not a bundle: wrong content type, truncated, or broken HTTP."""


class StateError(UpdateError):
    """The state directory could not be written (full disk, read-only, permissions)."""
