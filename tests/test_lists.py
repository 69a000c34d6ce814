"""HashList from Python: publishing, loading, deltas, matching and each refusal as its own
exception."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

import hashguard
from hashguard import HashList, lists
from hashguard.hashing import PdqHash

from .test_hashing import EXAMPLES

NOW = int(time.time())


def entries() -> list[lists.ListEntry]:
    chelsea = EXAMPLES / "chelsea.jpg"
    coffee = hashguard.hash_image(EXAMPLES / "coffee.jpg")
    return [
        lists.ListEntry(1, "A1", "hotline", pdq=hashguard.hash_image(chelsea)),
        lists.ListEntry(2, "B", "hotline", pdq=coffee, threshold=10),
        lists.ListEntry(
            3, "ai-generated", "vendor", md5=hashlib.md5(chelsea.read_bytes()).digest()
        ),
    ]


def seal(p: dict[str, object], tmp: Path, name: str = "v5.hgl", **kw: object) -> Path:
    args: dict[str, object] = {
        "list_id": "test",
        "version": 5,
        "entries": entries(),
        "signer": p["signer"],
        "app_keys": [p["app"]],
        "device_publics": [p["device"].public],  # type: ignore[attr-defined]
        "expires": NOW + 3600,
    }
    args.update(kw)
    path = tmp / name
    path.write_bytes(lists.seal_bundle(**args))  # type: ignore[arg-type]
    return path


def load(p: dict[str, object], path: Path, **kw: object) -> HashList:
    args: dict[str, object] = {"verify_key": p["root"].public, "content_key": p["app"]}  # type: ignore[attr-defined]
    args.update(kw)
    return HashList.open(path, **args)  # type: ignore[arg-type]


def test_open_reports_facts_and_matches(publisher: dict[str, object], tmp_path: Path) -> None:
    path = seal(publisher, tmp_path)
    hl = load(publisher, path, list_id="test", installed_version=4)
    assert (hl.list_id, hl.version, hl.entry_count) == ("test", 5, 3)
    assert hl.categories == {"A1": 1, "B": 1, "ai-generated": 1}
    assert (hl.default_threshold, hl.min_quality, hl.is_stale) == (31, 50, False)
    assert hl.expires == NOW + 3600
    # The same photo, mirrored and re-encoded: found through its dihedral variants.
    from PIL import Image, ImageOps

    mirrored = tmp_path / "m.jpg"
    with Image.open(EXAMPLES / "chelsea.jpg") as img:
        ImageOps.mirror(img).save(mirrored, quality=80)
    q = hashguard.hash_image(mirrored, dihedral=True)
    (m,) = hl.match(q)
    assert (m.entry_id, m.category, m.kind, m.transform) == (1, "A1", "pdq", "flipy")
    assert hl.match(q, dihedral=False) == []
    # Exact MD5 of the file.
    fp = hashguard.fingerprint(EXAMPLES / "chelsea.jpg", dihedral=True)
    kinds = {(m.entry_id, m.kind) for m in hl.match(fp.pdq, md5=bytes.fromhex(fp.md5))}
    assert kinds == {(1, "pdq"), (3, "md5")}


def test_device_key_opens_the_sealed_slot(publisher: dict[str, object], tmp_path: Path) -> None:
    path = seal(publisher, tmp_path)
    hl = HashList.open(
        path,
        verify_key=publisher["root"].public,  # type: ignore[attr-defined]
        device_key=publisher["device"].secret,  # type: ignore[attr-defined]
    )
    assert hl.entry_count == 3


def test_unreadable_paths_raise_os_errors(publisher: dict[str, object], tmp_path: Path) -> None:
    seal(publisher, tmp_path)
    with pytest.raises(FileNotFoundError):
        load(publisher, tmp_path / "missing.hgl")
    # A folder exists but is no file: the native reader's error, as an OSError naming it.
    with pytest.raises(OSError, match=str(tmp_path)):
        load(publisher, tmp_path)


def test_each_refusal_has_its_own_exception(publisher: dict[str, object], tmp_path: Path) -> None:
    path = seal(publisher, tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    tampered = tmp_path / "tampered.hgl"
    tampered.write_bytes(bytes(data))
    with pytest.raises(hashguard.BadSignature):
        load(publisher, tampered)
    with pytest.raises(hashguard.UntrustedKey):
        load(publisher, path, verify_key=lists.generate_ed25519_key().public)
    with pytest.raises(hashguard.Rollback):
        load(publisher, path, installed_version=5)
    with pytest.raises(hashguard.WrongList):
        load(publisher, path, list_id="another")
    with pytest.raises(hashguard.NoContentKey):
        load(publisher, path, content_key=lists.generate_app_key())
    with pytest.raises(hashguard.ListExpired):
        load(publisher, path, now=NOW + 7200)
    assert load(publisher, path, now=NOW + 7200, allow_stale=True).is_stale
    with pytest.raises(hashguard.ListTooLarge):
        load(publisher, path, max_bundle_bytes=100)
    truncated = tmp_path / "short.hgl"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(hashguard.ListError):
        load(publisher, truncated)
    garbage = tmp_path / "garbage.hgl"
    garbage.write_bytes(b"not a bundle at all")
    with pytest.raises(hashguard.ListMalformed):
        load(publisher, garbage)
    for exc in (hashguard.BadSignature, hashguard.Rollback, hashguard.ListTooLarge):
        assert issubclass(exc, hashguard.ListError)
        assert issubclass(exc, hashguard.Error)


def test_deltas(publisher: dict[str, object], tmp_path: Path) -> None:
    v5 = load(publisher, seal(publisher, tmp_path))
    rocket = hashguard.hash_image(EXAMPLES / "rocket.jpg")
    delta = seal(
        publisher,
        tmp_path,
        "d6.hgl",
        version=6,
        base_version=5,
        entries=[lists.ListEntry(9, "B", "hotline", pdq=rocket)],
        tombstones=[1],
    )
    v6 = v5.apply_delta(delta, verify_key=publisher["root"].public, content_key=publisher["app"])  # type: ignore[attr-defined]
    assert (v6.version, v6.entry_count) == (6, 3)
    assert [m.entry_id for m in v6.match(rocket, dihedral=False)] == [9]
    chelsea = hashguard.hash_image(EXAMPLES / "chelsea.jpg")
    assert v6.match(chelsea, dihedral=False) == []
    assert [m.entry_id for m in v5.match(chelsea, dihedral=False)] == [1]
    wrong = seal(publisher, tmp_path, "d7.hgl", version=8, base_version=7, entries=[])
    with pytest.raises(hashguard.WrongBase):
        v6.apply_delta(wrong, verify_key=publisher["root"].public, content_key=publisher["app"])  # type: ignore[attr-defined]


def test_no_api_returns_entries_and_secrets_are_not_printed(
    publisher: dict[str, object], tmp_path: Path
) -> None:
    hl = load(publisher, seal(publisher, tmp_path))
    public = [n for n in dir(hl) if not n.startswith("_")]
    assert not any("entr" in n and n != "entry_count" for n in public)
    key = lists.generate_ed25519_key()
    assert key.secret.hex() not in repr(key)
    assert isinstance(PdqHash, type)


def test_pdq_only_bundles_from_arrays(publisher: dict[str, object], tmp_path: Path) -> None:
    import numpy as np

    codes = np.random.default_rng(3).integers(0, 256, (5000, 32), dtype=np.uint8)
    ids = np.arange(5000, dtype=np.uint64) * 2
    data = lists.seal_pdq_bundle(
        list_id="te",
        version=1,
        codes=codes,
        ids=ids,
        category="A1",
        source="threatexchange",
        signer=publisher["signer"],  # type: ignore[arg-type]
        app_keys=[publisher["app"]],  # type: ignore[list-item]
        expires=NOW + 60,
    )
    path = tmp_path / "te.hgl"
    path.write_bytes(data)
    hl = load(publisher, path)
    assert (hl.entry_count, hl.categories) == (5000, {"A1": 5000})
    q = PdqHash(codes[1234].tobytes(), 90)
    assert [(m.entry_id, m.distance) for m in hl.match(q, dihedral=False)] == [(2468, 0)]
    with pytest.raises(ValueError, match="32"):
        lists.seal_pdq_bundle(
            list_id="te", version=1, codes=codes[:, :31], ids=ids, category="A1", source="s",
            signer=publisher["signer"], app_keys=[publisher["app"]], expires=NOW + 60,  # type: ignore[arg-type,list-item]
        )  # fmt: skip


def test_any_of_several_content_keys_opens(publisher: dict[str, object], tmp_path: Path) -> None:
    path = seal(publisher, tmp_path)
    old = lists.generate_app_key()
    hl = load(publisher, path, content_key=[old, publisher["app"]])
    assert hl.entry_count == 3
    with pytest.raises(hashguard.NoContentKey):
        load(publisher, path, content_key=[old])
