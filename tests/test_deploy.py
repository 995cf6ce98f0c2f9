"""The inference copy (BatchNorm folded, NHWC) computes what the trained network computes,
and the process keeps the memory inference frees instead of faulting it in again."""
import subprocess
import sys

import pytest
import torch
from torch import nn

from hinas_lib.config import get_preset
from hinas_lib.deploy import fold_batchnorm_, inference_copy
from hinas_lib.genotype import Genotype
from hinas_lib.network import build_network

CELLS = (((("sep_conv_3x3", 0), ("dil_conv_5x5", 1)), (("conv_3x3", 0), ("skip_connect", 2))),
         ((("dil_conv_3x3", 0), ("sep_conv_5x5", 1)), (("conv_3x3", 1), ("sep_conv_3x3", 2))))


def _trained_like(style="compact"):
    """A network whose BatchNorms hold non-trivial statistics and affine values (as after training)."""
    cfg = get_preset("tiny", "denoise")
    torch.manual_seed(0)
    net = build_network(Genotype(cells=CELLS, path=(0, 1)), cfg)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                if m.affine:
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0, 0.2)
    return net.eval()


def test_the_inference_copy_computes_the_same_output():
    net = _trained_like()
    x = torch.rand(2, 1, 37, 41)
    with torch.no_grad():
        ref = net(x)
        fast = inference_copy(net)
        out = fast(x)
    assert torch.allclose(out, ref, atol=1e-5, rtol=1e-4)
    # every BN behind a conv is gone from the copy, none from the original
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert all(not p.requires_grad for p in fast.parameters())
    assert all(p.requires_grad for p in net.parameters())


def test_fold_leaves_a_batchnorm_it_cannot_fold():
    seq = nn.Sequential(nn.LeakyReLU(0.2), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3, padding=1)).eval()
    assert fold_batchnorm_(seq) == 0 and isinstance(seq[1], nn.BatchNorm2d)
    seq = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)).eval()
    assert fold_batchnorm_(seq) == 1 and isinstance(seq[1], nn.Identity)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_memory_is_reused_not_faulted_in_again():
    # minor page faults of repeated forward passes (after the first): with glibc's defaults each
    # 16 MB activation goes back to the kernel when freed and every page faults in again
    prog = """
import resource, sys, torch
from hinas_lib.deploy import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
torch.set_num_threads(1)
net = torch.nn.Sequential(*[torch.nn.Conv2d(16, 16, 3, padding=1) for _ in range(6)]).eval()
x = torch.rand(1, 16, 512, 512)
with torch.no_grad():
    net(x)
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        net(x)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""
    faults = {mode: int(subprocess.run([sys.executable, "-c", prog, mode], capture_output=True, text=True,
                                       check=True).stdout) for mode in ("default", "keep")}
    assert faults["default"] > 3 * 4096  # at least one 16 MB activation per pass faulted in again
    assert faults["keep"] * 4 < faults["default"]
