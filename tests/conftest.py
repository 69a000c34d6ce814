"""Fixtures shared by the test modules."""

from __future__ import annotations

import time

import pytest

from hashguard import lists

NOW = int(time.time())


@pytest.fixture(scope="session")
def publisher() -> dict[str, object]:
    """A root key, a certified signing key, an app key and a device key."""
    root = lists.generate_ed25519_key()
    signing = lists.generate_ed25519_key()
    cert = lists.issue_certificate(root.secret, signing.public, NOW - 60, NOW + 86_400)
    return {
        "root": root,
        "signer": lists.CertifiedSigner(signing.secret, cert),
        "app": lists.generate_app_key(),
        "device": lists.generate_device_key(),
    }
