"""Choose the JPEG task's TV baseline weight per quality on Train400 images (never a test set).

    python -m benchmarks.jpeg_tv_weights [--shared ../shared] [--images 20]

Prints, for each quality, the mean PSNR of the compressed input and of TV smoothing at each
candidate weight on the first ``--images`` Train400 images (grey), and the best weight:
what ``hinas_lib.tasks.jpeg.TV_WEIGHTS`` holds.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from skimage.restoration import denoise_tv_chambolle  # noqa: E402

from hinas_lib import data  # noqa: E402
from hinas_lib.metrics import psnr  # noqa: E402
from hinas_lib.tasks.jpeg import jpeg_compress  # noqa: E402

WEIGHTS = (0.0, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.07, 0.1)
QUALITIES = (10, 20, 30, 40, 60, 80, 95)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", default=str(ROOT.parent / "shared"))
    p.add_argument("--images", type=int, default=12)
    a = p.parse_args(argv)
    folder = Path(a.shared) / "data" / "Train400"
    if not folder.is_dir():
        print(f"error: {folder} not found (Train400 from ../shared)", file=sys.stderr)
        return 2
    imgs = [im for _, im in data.load_folder(folder, channels=1)[: a.images]]
    for q in QUALITIES:
        scores = {w: [] for w in WEIGHTS}
        for im in imgs:
            gt = data.to_tensor(im)
            lq = data.to_numpy(jpeg_compress(gt, q))
            for w in WEIGHTS:
                out = lq if w == 0 else denoise_tv_chambolle(lq, weight=w)
                scores[w].append(float(psnr(data.to_tensor(out.astype(np.float32)).clamp(0, 1)[None], gt[None])))
        means = {w: float(np.mean(v)) for w, v in scores.items()}
        best = max(means, key=means.get)
        print(f"q{q:<3d} JPEG {means[0.0]:.2f} dB | " + " ".join(f"{w:g}:{m:.2f}" for w, m in means.items())
              + f" | best {best:g} (+{means[best] - means[0.0]:.2f} dB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
