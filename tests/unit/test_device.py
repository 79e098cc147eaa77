import contextlib
import types
import warnings

import pytest
import torch

from molvae.device import (
    PRECISION_CHOICES,
    check_precision,
    cpu_matmul_precision,
    effective_precision,
    forward_autocast,
    resolve_device,
)


def test_auto_and_cpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")


def test_bad_names_and_missing_cuda(monkeypatch):
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA device"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


HAS_BF16_SETTING = hasattr(getattr(torch.backends.mkldnn, "matmul", None), "fp32_precision")
needs_bf16_setting = pytest.mark.skipif(not HAS_BF16_SETTING, reason="torch < 2.9 has no bf16 matmul setting")


def test_precision_names_are_checked_everywhere():
    assert check_precision("bf16") == "bf16"
    for call in (check_precision, lambda p: forward_autocast(torch.device("cpu"), p),
                 lambda p: cpu_matmul_precision(torch.device("cuda"), p).__enter__(),
                 lambda p: effective_precision(torch.device("cuda"), p)):
        with pytest.raises(ValueError, match="precision must be one of"):
            call("fp16")


def test_effective_precision_says_what_runs_where():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert [effective_precision(cuda, p) for p in PRECISION_CHOICES] == ["bf16-autocast", "fp32",
                                                                         "bf16-autocast"]
    assert [effective_precision(cpu, p) for p in ("auto", "fp32")] == ["fp32", "fp32"]
    if HAS_BF16_SETTING:
        assert effective_precision(cpu, "bf16") == "bf16-matmul"


def test_autocast_is_bf16_on_cuda_unless_fp32_and_never_on_the_cpu():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for precision in ("auto", "fp32"):
        assert isinstance(forward_autocast(cpu, precision), contextlib.nullcontext)
    assert isinstance(forward_autocast(cuda, "fp32"), contextlib.nullcontext)
    with warnings.catch_warnings():  # building a CUDA autocast without CUDA warns, harmlessly
        warnings.simplefilter("ignore")
        for precision in ("auto", "bf16"):
            autocast = forward_autocast(cuda, precision)
            assert isinstance(autocast, torch.autocast) and autocast.fast_dtype == torch.bfloat16


@needs_bf16_setting
def test_cpu_bf16_matmuls_are_scoped_and_restored():
    matmul = torch.backends.mkldnn.matmul
    before = matmul.fp32_precision
    assert isinstance(forward_autocast(torch.device("cpu"), "bf16"), contextlib.nullcontext)
    a, b = torch.randn(64, 512), torch.randn(512, 64)
    with cpu_matmul_precision(torch.device("cpu"), "bf16"):
        assert matmul.fp32_precision == "bf16"
        rounded = a @ b
    assert matmul.fp32_precision == before
    with pytest.raises(KeyError), cpu_matmul_precision(torch.device("cpu"), "bf16"):
        raise KeyError("an error inside training")
    assert matmul.fp32_precision == before
    with (cpu_matmul_precision(torch.device("cpu"), "fp32"),
          cpu_matmul_precision(torch.device("cuda"), "bf16")):
        assert matmul.fp32_precision == before
        exact = a @ b
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("this CPU has no oneDNN bf16 path")
    # bf16 inputs keep 8 significant bits: the products differ, but only at that precision.
    expected = a.double() @ b.double()
    assert torch.allclose(exact.double(), expected, atol=1e-3)
    assert not torch.equal(rounded, exact) and torch.allclose(rounded.double(), expected, atol=0.5)


def test_cpu_bf16_needs_a_torch_with_the_setting(monkeypatch):
    monkeypatch.setattr(torch.backends, "mkldnn", types.SimpleNamespace())  # torch < 2.9 has no .matmul
    with pytest.raises(ValueError, match=r"needs torch >= 2\.9"), \
            cpu_matmul_precision(torch.device("cpu"), "bf16"):
        pass
