import gzip
import os
import shutil
import struct

import numpy as np
import pytest
import torch


# one fixed thread everywhere, subprocesses included: exact comparisons need a fixed count, and
# the tests that check the automatic choice unset it
os.environ.setdefault("GANLAB_THREADS", "1")


@pytest.fixture(autouse=True)
def _small_threads():
    torch.set_num_threads(1)
    yield


def write_idx(path, array: np.ndarray, gz: bool = False):
    """Write ``array`` (uint8) in LeCun's IDX format."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.tobytes()
    if gz:
        data = gzip.compress(data)
        path = path.with_name(path.name + ".gz")
    path.write_bytes(data)
    return path


@pytest.fixture
def tiny_mnist(tmp_path):
    """A tiny MNIST in the IDX layout torchvision writes (MNIST/raw/...): 40 train, 10 test."""
    rng = np.random.default_rng(0)
    raw = tmp_path / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 40), ("t10k", 10)):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, size=(n,), dtype=np.uint8)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", x, gz=(prefix == "t10k"))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", y)
    return tmp_path / "mnist"


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's package) driven by Playwright; skipped, with the reason
    printed, where either is missing (.ci/run installs both)."""
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (apt-get install chromium; .ci/run does): the "
                    "pages are not opened in a browser here")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]'): the pages are not "
                    "opened in a browser here")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield b
        b.close()
