"""Shared test setup: deterministic seeds and a small CPU thread budget.

One intra-op thread: the tests are tiny, and with two OpenMP threads on a
loaded 2-core machine (other jobs running) spin-waiting made them ~20x slower.
"""
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
