"""Fixtures shared across the test suite."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from molvae.images.idx import write_idx


def synthetic_images(n: int, n_classes: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Easy synthetic 28×28 uint8 images: class k has a bright vertical band k, noise elsewhere.

    Labels cycle 0, 1, …, n_classes - 1 so every class is (almost) equally frequent.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes
    images = rng.integers(0, 40, size=(n, 28, 28), dtype=np.uint8)
    width = 28 // n_classes
    for i, label in enumerate(labels):
        band = slice(label * width, (label + 1) * width)
        images[i, :, band] = rng.integers(200, 256, size=(28, width), dtype=np.uint8)
    return images, labels.astype(np.uint8)


IdxDirFactory = Callable[..., Path]


@pytest.fixture(scope="session")
def idx_dir_factory(tmp_path_factory: pytest.TempPathFactory) -> IdxDirFactory:
    """Make an MNIST-style IDX directory of :func:`synthetic_images`.

    ``make(n_train=200, n_test=50, n_classes=2, labels=True, seed=0)`` returns a new
    directory with ``train-*`` files and, when ``n_test`` > 0, ``t10k-*`` files.
    """

    def make(n_train: int = 200, n_test: int = 50, n_classes: int = 2, labels: bool = True,
             seed: int = 0) -> Path:
        directory = tmp_path_factory.mktemp("idx")
        for prefix, n, split_seed in (("train", n_train, seed), ("t10k", n_test, seed + 1)):
            if n == 0:
                continue
            images, split_labels = synthetic_images(n, n_classes, split_seed)
            write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", images)
            if labels:
                write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", split_labels)
        return directory

    return make


class LocalServer:
    """A local HTTP server over a folder, recording the paths requested."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                super().do_GET()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
        )
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalServer]:
    """A :class:`LocalServer` on 127.0.0.1 serving the empty folder ``server.root``."""
    root = tmp_path / "served"
    root.mkdir()
    srv = LocalServer(root)
    yield srv
    srv.close()


@pytest.fixture(scope="session")
def cpu_bf16() -> tuple[str, str]:
    """``--precision`` asking for bf16 matmuls on the CPU, and the mode a model then records;
    float32 on a torch too old for them (< 2.9), so the plumbing is still exercised."""
    import torch

    if hasattr(getattr(torch.backends.mkldnn, "matmul", None), "fp32_precision"):
        return "bf16", "bf16-matmul"
    return "fp32", "fp32"
