"""The data preparation scripts: missing-input message, and round trips on tiny fake archives."""
import hashlib
import importlib
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SCRIPTS = Path(__file__).resolve().parents[1] / "data_scripts"
sys.path.insert(0, str(SCRIPTS))  # the scripts import their sibling _common
_common = importlib.import_module("_common")
prepare_bsd500 = importlib.import_module("prepare_bsd500")
prepare_div2k = importlib.import_module("prepare_div2k")
prepare_testsets = importlib.import_module("prepare_testsets")


def write_image(path: Path, seed: int, mode: str = "RGB", size=(12, 10)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
    return path


def pngs(folder: Path):
    return sorted(p.name for p in folder.glob("*.png"))


def test_missing_input_prints_sources_and_exits_2(tmp_path):
    missing = tmp_path / "BSR_bsds500.tgz"
    proc = subprocess.run([sys.executable, str(SCRIPTS / "prepare_bsd500.py"), "--src", str(missing),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert str(missing) in proc.stderr and "BSR_bsds500.tgz" in proc.stderr and "https://" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_missing_inputs_in_process(tmp_path, capsys):
    assert prepare_div2k.main(["--src", str(tmp_path / "DIV2K_train_HR.zip")]) == 2
    assert "data.vision.ee.ethz.ch" in capsys.readouterr().err
    assert prepare_testsets.main(["--src", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    assert "benchmark.tar" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert prepare_testsets.main(["--src", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2


def test_bsd500_round_trip_from_tgz(tmp_path, capsys):
    tree = tmp_path / "tree"
    base = tree / "BSR" / "BSDS500" / "data" / "images"
    counts = {"train": 2, "val": 1, "test": 2}
    for split, n in counts.items():
        for i in range(n):
            write_image(base / split / f"{split}{i}.jpg", seed=i)
        (base / split / "Thumbs.db").write_bytes(b"junk")  # present in the real archive
    archive = tmp_path / "BSR_bsds500.tgz"
    with tarfile.open(archive, "w:gz") as t:
        t.add(tree / "BSR", arcname="BSR")
    out = tmp_path / "BSD500"
    assert prepare_bsd500.main(["--src", str(archive), "--out", str(out)]) == 0
    assert pngs(out / "train") == ["train0.png", "train1.png", "val0.png"]
    assert pngs(out / "test") == ["test0.png", "test1.png"]
    with Image.open(out / "train" / "val0.png") as im:
        assert im.mode == "L" and im.size == (12, 10)  # grey by default
    assert (out / ".gitignore").read_text().strip().endswith("*")
    assert "warning: train has 2 images" in capsys.readouterr().err
    # RGB from the unpacked folder as well.
    assert prepare_bsd500.main(["--src", str(tree), "--out", str(tmp_path / "rgb"), "--channels", "3"]) == 0
    with Image.open(tmp_path / "rgb" / "test" / "test1.png") as im:
        assert im.mode == "RGB"
    # DnCNN's split: val (where BSD68 comes from) is left out, test is trained on
    assert prepare_bsd500.main(["--src", str(tree), "--out", str(tmp_path / "d"), "--split", "bsd68"]) == 0
    assert pngs(tmp_path / "d" / "train") == ["test0.png", "test1.png", "train0.png", "train1.png"]
    assert not (tmp_path / "d" / "test").exists()


def test_div2k_round_trip_from_zip(tmp_path):
    src = [write_image(tmp_path / "DIV2K_train_HR" / f"{i:04d}.png", seed=i) for i in (1, 2)]
    archive = tmp_path / "DIV2K_train_HR.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in src:
            z.write(p, f"DIV2K_train_HR/{p.name}")
    valid = tmp_path / "valid"
    write_image(valid / "0801.png", seed=9)
    out = tmp_path / "DIV2K"
    assert prepare_div2k.main(["--src", str(archive), "--valid", str(valid), "--out", str(out)]) == 0
    # data/DIV2K/train, as the README's commands read it (it was train_HR: issue 11)
    assert pngs(out / "train") == ["0001.png", "0002.png"]
    assert (out / "train" / "0001.png").read_bytes() == src[0].read_bytes()  # copied unchanged
    assert pngs(out / "valid") == ["0801.png"]


def make_testsets(root: Path):
    """Set5 in the HR + LR_bicubic layout, BSD100 as a flat zip, Set12 grey."""
    files = [write_image(root / "Set5" / "HR" / f"{n}.png", seed=i) for i, n in enumerate(("baby", "bird"))]
    files.append(write_image(root / "Set5" / "LR_bicubic" / "X2" / "babyx2.png", seed=5, size=(6, 5)))
    flat = [write_image(root / "stage" / f"{n}.png", seed=7 + i) for i, n in enumerate(("3096", "8023"))]
    with zipfile.ZipFile(root / "BSD100.zip", "w") as z:
        for p in flat:
            z.write(p, f"BSD100/{p.name}")
    files.append(write_image(root / "Set12" / "01.bmp", seed=3, mode="L"))
    return files


def write_sums(path: Path, root: Path, files, tamper=None):
    lines = []
    for f in files:
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        if f == tamper:
            digest = "0" * 64
        lines.append(f"{digest}  ./{f.relative_to(root).as_posix()}")
    path.write_text("\n".join(lines) + "\n")


def test_testsets_layout_and_checksums(tmp_path, capsys):
    src = tmp_path / "downloads"
    files = make_testsets(src)
    sums = tmp_path / "SHA256SUMS"
    write_sums(sums, src, files)
    out = tmp_path / "data"
    assert prepare_testsets.main(["--src", str(src), "--out", str(out), "--sha256sums", str(sums)]) == 0
    assert "verified 4 files" in capsys.readouterr().out
    assert pngs(out / "Set5") == ["baby.png", "bird.png"]
    assert pngs(out / "Set5" / "LR_bicubic" / "X2") == ["babyx2.png"]
    assert pngs(out / "B100") == ["3096.png", "8023.png"]  # alias BSD100 -> B100, unpacked from zip
    with Image.open(out / "Set12" / "01.png") as im:
        assert im.mode == "L"  # BMP converted, grey kept


def test_testsets_checksum_mismatch_exits_1_and_writes_nothing(tmp_path, capsys):
    src = tmp_path / "downloads"
    files = make_testsets(src)
    sums = tmp_path / "SHA256SUMS"
    write_sums(sums, src, files, tamper=files[1])
    out = tmp_path / "data"
    assert prepare_testsets.main(["--src", str(src), "--out", str(out), "--sha256sums", str(sums)]) == 1
    assert "bird.png" in capsys.readouterr().err
    assert not out.exists()


def test_testsets_named_but_missing_set_exits_2(tmp_path, capsys):
    src = tmp_path / "downloads"
    make_testsets(src)
    code = prepare_testsets.main(["--src", str(src), "--out", str(tmp_path / "d"), "--sets", "Set5", "Urban100"])
    assert code == 2
    assert "Urban100" in capsys.readouterr().err
    assert pngs(tmp_path / "d" / "Set5") == ["baby.png", "bird.png"]  # what was found is still written


def test_extract_refuses_path_traversal(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../escaped.txt", "x")
    with pytest.raises(ValueError, match="outside"):
        _common.extract(evil, tmp_path / "dest")
    assert not (tmp_path / "escaped.txt").exists()


def test_checksum_file_parsing(tmp_path):
    sums = tmp_path / "SUMS"
    sums.write_text("# comment\n" + "ab" * 32 + "  ./Set5/HR/baby.png\n" + "cd" * 32 + " *x/y.png\n")
    c = _common.Checksums.from_file(sums)
    assert c.expected(tmp_path / "any" / "Set5" / "HR" / "baby.png") == "ab" * 32
    assert c.expected(tmp_path / "x" / "y.png") == "cd" * 32
    assert c.expected(tmp_path / "HR" / "baby.png") is None
    sums.write_text("nothash  file.png\n")
    with pytest.raises(ValueError, match="SUMS:1"):
        _common.Checksums.from_file(sums)
