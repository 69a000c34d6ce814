"""`hashguard hash`: output formats, folder walking, per-file errors and exit codes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import hashguard
from hashguard.cli import EXIT_INPUT_ERRORS, EXIT_OK, EXIT_USAGE, Progress, main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "images"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """a.jpg, sub/b.png, sub/deeper/c.jpg and a broken sub/broken.png."""
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    with Image.open(EXAMPLES / "chelsea.jpg") as img:
        img.save(tmp_path / "a.jpg", quality=92)
        img.resize((200, 133)).save(tmp_path / "sub" / "b.png")
    with Image.open(EXAMPLES / "coffee.jpg") as img:
        img.save(tmp_path / "sub" / "deeper" / "c.jpg")
    (tmp_path / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    return tmp_path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_text_lines_have_hash_quality_digests_and_path(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tree / "a.jpg"
    code, out, err = run(["hash", str(path)], capsys)
    assert code == EXIT_OK
    assert err == ""
    pdq, quality, md5, sha256, printed = out.strip().split(" ", 4)
    data = path.read_bytes()
    assert pdq == hashguard.hash_image(path).hex
    assert int(quality) == hashguard.hash_image(path).quality
    assert md5 == hashlib.md5(data).hexdigest()
    assert sha256 == hashlib.sha256(data).hexdigest()
    assert printed == str(path)


def test_folders_are_walked_recursively_in_order_and_errors_do_not_stop(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["hash", "--workers", "2", str(tree)], capsys)
    assert code == EXIT_INPUT_ERRORS
    printed = [line.split(" ", 4)[4] for line in out.splitlines()]
    assert printed == [
        str(tree / "a.jpg"),
        str(tree / "sub" / "b.png"),
        str(tree / "sub" / "deeper" / "c.jpg"),
    ]
    assert err.count("error:") == 1
    assert "broken.png" in err


def test_json_lines_with_dihedral(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["hash", "--json", "--dihedral", str(tree / "sub" / "b.png")], capsys)
    assert code == EXIT_OK
    (record,) = [json.loads(line) for line in out.splitlines()]
    want = hashguard.hash_image(tree / "sub" / "b.png", dihedral=True)
    assert record["pdq"] == want.hex
    assert record["quality"] == want.quality
    assert record["dihedral"] == {k: v.hex for k, v in want.dihedral().items()}
    assert set(record) == {"path", "pdq", "quality", "md5", "sha256", "dihedral"}


def test_text_dihedral_lists_eight_variants(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(["hash", "--dihedral", str(tree / "a.jpg")], capsys)
    lines = out.splitlines()
    assert len(lines) == 9
    assert [line.split()[0] for line in lines[1:]] == list(hashguard.TRANSFORMS)


def test_missing_path_is_a_per_file_error(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["hash", str(tree / "nope.jpg"), str(tree / "a.jpg")], capsys)
    assert code == EXIT_INPUT_ERRORS
    assert len(out.splitlines()) == 1
    assert "nope.jpg" in err and "No such file" in err


@pytest.mark.parametrize("argv", [[], ["hash"], ["hash", "--workers", "0", "x"], ["frobnicate"]])
def test_bad_command_lines_exit_64(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == EXIT_USAGE
    assert "usage:" in capsys.readouterr().err


def test_progress_bar_only_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    quiet = io.StringIO()
    p = Progress(3, quiet)
    for _ in range(3):
        p.advance()
    p.finish()
    assert quiet.getvalue() == ""

    tty = Tty()
    p = Progress(3, tty)
    for _ in range(3):
        p.advance()
    p.finish()
    assert "3/3" in tty.getvalue()
    assert "files/s" in tty.getvalue()


def test_console_script_entry_point(tree: Path) -> None:
    exe = Path(sys.executable).parent / "hashguard"
    assert exe.exists(), "the hashguard console script is not installed"
    proc = subprocess.run(
        [str(exe), "hash", str(tree / "a.jpg")],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == hashguard.hash_image(tree / "a.jpg").hex
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=False)
    assert proc.stdout.strip() == f"hashguard {hashguard.__version__}"


def test_output_is_stable_for_an_array_written_to_disk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arr = np.zeros((64, 64, 3), np.uint8)
    Image.fromarray(arr).save(tmp_path / "flat.png")
    code, out, _ = run(["hash", str(tmp_path / "flat.png")], capsys)
    assert code == EXIT_OK
    assert out.split()[1] == "0"  # flat image: quality 0
