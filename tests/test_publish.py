"""Publisher tools: key files, list sources with line-numbered errors, and the `keys` and `list`
commands end to end."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import hashguard
from hashguard import publish
from hashguard.cli import EXIT_INPUT_ERRORS, EXIT_OK, main

from .test_hashing import EXAMPLES


def pdq_hex(name: str) -> str:
    return hashguard.hash_image(EXAMPLES / name).hex


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    k = tmp_path / "keys"
    assert main(["keys", "generate", "root", "--out", str(k)]) == EXIT_OK
    assert (
        main(["keys", "generate", "signing", "--root", str(k / "root.key"), "--out", str(k)]) == 0
    )
    assert main(["keys", "generate", "app", "--out", str(k)]) == EXIT_OK
    assert main(["keys", "generate", "device", "--out", str(k)]) == EXIT_OK
    return k


def sealing(k: Path, out: Path, version: int) -> list[str]:
    return [
        "--out", str(out), "--list-id", "demo", "--version", str(version),
        "--signing-key", str(k / "signing.key"), "--certificate", str(k / "signing.cert"),
        "--app-key", str(k / "app.key"), "--device-public", str(k / "device.pub"),
    ]  # fmt: skip


def test_key_files_are_hex_and_secrets_private(keys: Path) -> None:
    for name in ("root.key", "signing.key", "app.key", "device.key"):
        assert stat.S_IMODE(os.stat(keys / name).st_mode) == 0o600, name
        assert len(publish.read_key(keys / name)) == 32
    assert stat.S_IMODE(os.stat(keys / "root.pub").st_mode) == 0o644
    assert len(publish.read_key(keys / "signing.cert", 120)) == 120
    os.environ["HG_TEST_KEY"] = "ab" * 32
    assert publish.read_key("env:HG_TEST_KEY") == b"\xab" * 32
    with pytest.raises(hashguard.Error, match="32 bytes"):
        publish.read_key("env:HG_TEST_MISSING")


def test_build_verify_inspect_and_delta(
    keys: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    v1 = tmp_path / "v1.csv"
    v1.write_text(
        "pdq,md5,sha256,id,category,source,threshold\n"
        f"{pdq_hex('chelsea.jpg')},,,1,A1,hotline,\n"
        f",{'ab' * 16},,2,B,hotline,\n"
        f"{pdq_hex('coffee.jpg')},,,3,ai-generated,vendor,12\n"
    )
    assert main(["list", "build", str(v1), *sealing(keys, tmp_path / "v1.hgl", 1)]) == EXIT_OK
    root = ["--root-key", str(keys / "root.pub")]
    assert (
        main(
            ["list", "verify", str(tmp_path / "v1.hgl"), *root, "--app-key", str(keys / "app.key")]
        )
        == 0
    )
    assert (
        main(
            [
                "list",
                "verify",
                str(tmp_path / "v1.hgl"),
                *root,
                "--device-key",
                str(keys / "device.key"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["list", "inspect", str(tmp_path / "v1.hgl"), *root]) == EXIT_OK
    out = capsys.readouterr().out
    assert "version: 1" in out and "entries: 3" in out and "category" not in out
    assert (
        main(
            ["list", "inspect", str(tmp_path / "v1.hgl"), *root, "--app-key", str(keys / "app.key")]
        )
        == 0
    )
    assert "category ai-generated: 1" in capsys.readouterr().out

    v2 = tmp_path / "v2.csv"
    v2.write_text(
        "pdq,md5,sha256,id,category,source\n"
        f"{pdq_hex('chelsea.jpg')},,,1,A1,hotline\n"
        f"{pdq_hex('rocket.jpg')},,,4,B,hotline\n"
    )
    d = tmp_path / "d2.hgl"
    assert (
        main(["list", "delta", str(v1), str(v2), "--base-version", "1", *sealing(keys, d, 2)]) == 0
    )
    base = hashguard.HashList.open(
        tmp_path / "v1.hgl", verify_key=publish.read_key(keys / "root.pub"),
        content_key=publish.read_key(keys / "app.key"),
    )  # fmt: skip
    nxt = base.apply_delta(
        d, verify_key=publish.read_key(keys / "root.pub"),
        content_key=publish.read_key(keys / "app.key"),
    )  # fmt: skip
    assert (nxt.version, nxt.entry_count) == (2, 2)
    rocket = hashguard.hash_image(EXAMPLES / "rocket.jpg", dihedral=True)
    assert [m.entry_id for m in nxt.match(rocket)] == [4]

    # A tampered bundle fails verification with exit code 2 and a clear message.
    data = bytearray((tmp_path / "v1.hgl").read_bytes())
    data[300] ^= 4
    (tmp_path / "bad.hgl").write_bytes(bytes(data))
    capsys.readouterr()
    code = main(
        ["list", "verify", str(tmp_path / "bad.hgl"), *root, "--app-key", str(keys / "app.key")]
    )
    assert code == EXIT_INPUT_ERRORS
    assert "signature does not verify" in capsys.readouterr().err


def test_invalid_and_suspicious_rows_are_reported_by_line(
    keys: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "pdq,md5,sha256,id,category,source,quality\n"
        "zz,,,1,A1,h,\n"
        f"{'0' * 64},,,2,A1,h,\n"
        f"{pdq_hex('coffee.jpg')},,,2,A1,h,\n"
        ",,,4,A1,h,\n"
        f"{pdq_hex('rocket.jpg')},,,5,A1,h,10\n"
        f",{'a' * 31},,6,A1,h,\n"
    )
    with pytest.raises(publish.SourceError) as e:
        publish.read_csv(bad)
    text = str(e.value)
    for expected in (
        "line 2: pdq",
        "line 3: the all-zero PDQ hash",
        "line 4: duplicate id 2",
        "line 5: no fingerprint",
        "line 6: PDQ quality 10",
        "line 7: md5 must be 32 hex digits",
    ):
        assert expected in text
    code = main(["list", "build", str(bad), *sealing(keys, tmp_path / "x.hgl", 1)])
    assert code == EXIT_INPUT_ERRORS
    assert not (tmp_path / "x.hgl").exists()
    assert "line 2" in capsys.readouterr().err
    # --allow-suspicious lets the all-zero hash and low quality through, not broken rows.
    ok = tmp_path / "ok.csv"
    ok.write_text(f"pdq,id,category,source,quality\n{'0' * 64},1,A1,h,0\n")
    assert publish.read_csv(ok, allow_suspicious=True)[0].pdq == hashguard.PdqHash(bytes(32))


def test_threatexchange_hex_files(tmp_path: Path) -> None:
    te = tmp_path / "te.txt"
    te.write_text(f"# comment\n{pdq_hex('chelsea.jpg')}\n\n{pdq_hex('coffee.jpg').upper()},100\n")
    got = publish.read_te_hex(te, category="A1", source="te", first_id=10)
    assert [(e.id, e.category) for e in got] == [(10, "A1"), (11, "A1")]
    te.write_text("not-a-hash\n")
    with pytest.raises(publish.SourceError, match="line 1"):
        publish.read_te_hex(te, category="A1", source="te")


def test_atomic_write_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    publish.write_atomically(target, b"new")
    assert target.read_bytes() == b"new"
    with pytest.raises(TypeError):
        publish.write_atomically(target, 12345)  # type: ignore[arg-type]
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
