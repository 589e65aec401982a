"""The autotuner: choices are cached per key, the switch is respected, outputs match, choices can be inspected
and persisted. No test asserts a timing: the timing function is replaced where a specific winner is needed."""

import json
import time

import pytest
import torch

import sreconv
from sreconv.nn import SREConv2d, SREConv3d, tuning

KERNEL = 9


@pytest.fixture(autouse=True)
def fresh_tuner(monkeypatch):
    """Every test starts in 'benchmark' mode with an empty cache and no cache file."""
    monkeypatch.setattr(tuning._STATE, "mode", "benchmark")
    monkeypatch.setattr(tuning._STATE, "cache_file", None)
    tuning.clear_tuning_cache()
    yield
    tuning.clear_tuning_cache()


@pytest.fixture
def fake_timer(monkeypatch):
    """Replaces the timing by a scripted one: ``winner`` is fastest; records every call's candidates."""
    calls = []

    def install(winner):
        def timed(candidates, device):
            calls.append(sorted(candidates))
            for fn in candidates.values():  # the runs themselves still happen once
                fn()
            return {name: (1.0 if name == winner else 2.0) for name in candidates}

        monkeypatch.setattr(tuning, "_time_candidates", timed)
        return calls

    return install


def big_layer(**kwargs):
    return SREConv2d(16, 16, KERNEL, padding=KERNEL // 2, **kwargs)


def big_input(batch=4, size=16):
    return torch.randn(batch, 16, size, size)


class TestSwitch:
    def test_modes_and_validation(self):
        assert tuning.MODES == ("benchmark", "model", "off")
        sreconv.set_tuning("model")
        assert sreconv.get_tuning() == "model"
        with pytest.raises(ValueError, match="tuning mode must be one of 'benchmark', 'model', 'off', got 'fast'"):
            sreconv.set_tuning("fast")
        with sreconv.tuning_mode("off"):
            assert sreconv.get_tuning() == "off"
        assert sreconv.get_tuning() == "model"

    def test_off_runs_dense(self, fake_timer):
        calls = fake_timer("ring")
        layer, x = big_layer(), big_input()
        with sreconv.tuning_mode("off"), torch.no_grad():
            assert layer.resolved_impl(x) == "dense"
            layer(x)
        assert calls == [] and tuning.tuning_choices() == []

    def test_model_mode_never_times(self, fake_timer):
        calls = fake_timer("depthwise")
        layer, x = big_layer(), big_input()
        with sreconv.tuning_mode("model"), torch.no_grad():
            first = layer.resolved_impl(x)
            assert layer.resolved_impl(x) == first
        assert calls == []
        (choice,) = tuning.tuning_choices()
        assert choice["source"] == "model" and choice["path"] == first and choice["times_ms"] is None

    def test_benchmark_after_model_mode_decides_again(self, fake_timer):
        calls = fake_timer("depthwise")
        layer, x = big_layer(), big_input()
        with torch.no_grad():
            with sreconv.tuning_mode("model"):
                layer(x)
            assert layer.resolved_impl(x) == "depthwise"
        assert len(calls) == 1

    def test_explicit_impl_is_never_tuned(self, fake_timer):
        calls = fake_timer("depthwise")
        x = big_input()
        with torch.no_grad():
            for impl in ("dense", "ring", "depthwise"):
                assert big_layer(impl=impl).resolved_impl(x) == impl
        assert calls == []


class TestCache:
    def test_first_call_times_then_cached(self, fake_timer):
        calls = fake_timer("ring")
        layer, x = big_layer(), big_input()
        with torch.no_grad():
            assert layer.resolved_impl(x) == "ring"
            for _ in range(3):
                layer(x)
        assert len(calls) == 1 and "dense" in calls[0] and "ring" in calls[0]
        (choice,) = tuning.tuning_choices()
        assert choice["path"] == "ring" and choice["source"] == "benchmark"
        assert choice["input_shape"] == (4, 16, 16, 16) and choice["training"] is False
        assert choice["threads"] == torch.get_num_threads() and choice["dtype"] == torch.float32
        assert set(choice["times_ms"]) == set(calls[0])

    def test_layers_of_the_same_geometry_share_a_choice(self, fake_timer):
        calls = fake_timer("ring")
        x = big_input()
        with torch.no_grad():
            big_layer()(x)
            big_layer()(x)
        assert len(calls) == 1

    def test_choices_of_one_model(self, fake_timer):
        fake_timer("ring")
        layer, other = big_layer(), sreconv.SREConv2d(16, 8, 9, padding=4)
        with torch.no_grad():
            layer(big_input())
            other(big_input())
        assert len(tuning.tuning_choices()) == 2
        (mine,) = tuning.tuning_choices(torch.nn.Sequential(torch.nn.ReLU(), layer))
        assert mine["layer"][:3] == ("SREConv2d", 16, 16)
        assert tuning.tuning_choices(torch.nn.ReLU()) == []

    def test_every_key_field_gets_its_own_choice(self, fake_timer):
        calls = fake_timer("depthwise")
        layer, x = big_layer(), big_input()
        threads = torch.get_num_threads()
        with torch.no_grad():
            layer(x)
            layer(big_input(size=20))  # input shape
            layer(x.contiguous(memory_format=torch.channels_last))  # memory format
            layer.double()(x.double())  # dtype
            layer.float()
        layer(x)  # training (grad enabled, weights require grad)
        torch.set_num_threads(1 if threads > 1 else 2)
        try:
            with torch.no_grad():
                layer(x)  # thread count
        finally:
            torch.set_num_threads(threads)
        with torch.no_grad():
            SREConv2d(16, 16, KERNEL, padding=KERNEL // 2, ring_basis="gaussian")(x)  # other rings
        assert len(calls) == 7
        keys = {(c["input_shape"], c["channels_last"], c["dtype"], c["training"], c["threads"], c["layer"])
                for c in tuning.tuning_choices()}
        assert len(keys) == 7

    def test_a_partial_batch_reuses_the_choice_of_its_power_of_two(self, fake_timer):
        calls = fake_timer("depthwise")
        layer = big_layer()
        with torch.no_grad():
            for batch in (4, 3, 4, 5, 8, 7):
                assert layer(big_input(batch=batch)).shape[0] == batch
        assert len(calls) == 2  # batches 3-4 share a key, so do 5-8
        assert sorted(c["input_shape"][0] for c in tuning.tuning_choices()) == [4, 8]

    def test_tiny_inputs_use_the_model_without_timing(self, fake_timer):
        calls = fake_timer("ring")
        layer = SREConv2d(2, 2, 3, padding=1)
        with torch.no_grad():
            assert layer.resolved_impl(torch.randn(1, 2, 6, 6)) == "dense"
        assert calls == []
        assert tuning.tuning_choices()[0]["source"] == "model"

    def test_clear(self, fake_timer):
        calls = fake_timer("ring")
        layer, x = big_layer(), big_input()
        with torch.no_grad():
            layer(x)
            sreconv.clear_tuning_cache()
            assert tuning.tuning_choices() == []
            layer(x)
        assert len(calls) == 2


class TestNoSideEffects:
    """Real timing runs (no fake timer): they leave no trace in the caller's graph, gradients or RNG."""

    def test_outputs_grads_and_rng_unchanged(self):
        torch.manual_seed(0)
        layer = big_layer()
        reference = big_layer(impl="dense")
        reference.load_state_dict(layer.state_dict())
        x = big_input().requires_grad_()
        rng = torch.get_rng_state()
        y = layer(x)  # times the candidates (training key) on this first call
        assert torch.equal(torch.get_rng_state(), rng)
        assert layer.weight.grad is None and x.grad is None
        (choice,) = tuning.tuning_choices()
        assert choice["source"] == "benchmark" and choice["training"] is True
        y_ref = reference(x)
        torch.testing.assert_close(y, y_ref, atol=1e-4, rtol=1e-4)
        g = torch.randn_like(y)
        grads = torch.autograd.grad(y, (x, layer.weight, layer.bias), g)
        grads_ref = torch.autograd.grad(y_ref, (x, reference.weight, reference.bias), g)
        for a, b in zip(grads, grads_ref):
            torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-4)

    @pytest.mark.parametrize("path", ["ring", "depthwise"])
    def test_every_path_gives_the_same_output(self, fake_timer, path):
        fake_timer(path)
        layer, x = big_layer(), big_input()
        with torch.no_grad():
            y = layer(x)
            with sreconv.tuning_mode("off"):
                dense = layer(x)
        assert tuning.tuning_choices()[0]["path"] == path
        torch.testing.assert_close(y, dense, atol=1e-4, rtol=1e-4)

    @pytest.mark.slow
    def test_no_timing_inside_compile(self, monkeypatch):
        def refuse(*args):
            raise AssertionError("timed inside torch.compile")

        monkeypatch.setattr(tuning, "_time_candidates", refuse)
        torch._dynamo.reset()
        layer, x = big_layer(), big_input()
        compiled = torch.compile(layer, backend="eager", fullgraph=True)
        with torch.no_grad():
            torch.testing.assert_close(compiled(x), layer.to_conv()(x), atol=1e-4, rtol=1e-4)
        assert all(c["source"] != "benchmark" for c in tuning.tuning_choices())

    def test_no_timing_with_deterministic_algorithms(self, monkeypatch):
        monkeypatch.setattr(tuning, "_time_candidates", lambda *a: pytest.fail("timed"))
        layer, x = big_layer(), big_input()
        previous = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(True)
        try:
            with torch.no_grad():
                layer(x)
        finally:
            torch.use_deterministic_algorithms(previous)
        assert tuning.tuning_choices() == []

    def test_3d(self, fake_timer):
        calls = fake_timer("ring")
        layer = SREConv3d(8, 8, 5, padding=2)
        x = torch.randn(2, 8, 10, 10, 10)
        with torch.no_grad():
            assert layer.resolved_impl(x) == "ring"
            torch.testing.assert_close(layer(x), layer.to_conv()(x), atol=1e-4, rtol=1e-4)
        assert len(calls) == 1


class TestPersistence:
    def test_round_trip(self, fake_timer, tmp_path):
        calls = fake_timer("depthwise")
        layer, x = big_layer(), big_input()
        with torch.no_grad():
            layer(x)
        path = tmp_path / "tuning.json"
        assert tuning.save_tuning_cache(path) == 1
        data = json.loads(path.read_text())
        assert list(data["machines"]) == [tuning.machine_fingerprint()]
        sreconv.clear_tuning_cache()
        assert tuning.load_tuning_cache(path) == 1
        with torch.no_grad():
            assert layer.resolved_impl(x) == "depthwise"
        assert len(calls) == 1  # the loaded choice is used without timing
        assert tuning.tuning_choices()[0]["source"] == "file"

    def test_other_machines_are_ignored_and_kept(self, fake_timer, tmp_path, monkeypatch):
        fake_timer("ring")
        with torch.no_grad():
            big_layer()(big_input())
        path = tmp_path / "tuning.json"
        tuning.save_tuning_cache(path)
        this_machine = tuning.machine_fingerprint()
        monkeypatch.setattr(tuning, "machine_fingerprint", lambda: "another-machine")
        sreconv.clear_tuning_cache()
        assert tuning.load_tuning_cache(path) == 0
        tuning.save_tuning_cache(path)
        assert set(json.loads(path.read_text())["machines"]) == {"another-machine", this_machine}

    def test_missing_and_bad_files(self, tmp_path):
        assert tuning.load_tuning_cache(tmp_path / "absent.json") == 0
        bad = tmp_path / "bad.json"
        bad.write_text("[1, 2]")
        with pytest.raises(ValueError, match="is not an sreconv tuning cache"):
            tuning.load_tuning_cache(bad)
        bad.write_text("{not json")
        with pytest.raises(ValueError, match="is not a readable sreconv tuning cache"):
            tuning.load_tuning_cache(bad)

    def test_cache_file_from_the_environment_is_loaded_and_written(self, fake_timer, tmp_path, monkeypatch):
        calls = fake_timer("ring")
        path = tmp_path / "auto.json"
        monkeypatch.setattr(tuning._STATE, "cache_file", str(path))
        monkeypatch.setattr(tuning._STATE, "file_loaded", False)
        with torch.no_grad():
            big_layer()(big_input())
        assert path.exists() and len(calls) == 1
        sreconv.clear_tuning_cache()
        monkeypatch.setattr(tuning._STATE, "file_loaded", False)
        with torch.no_grad():
            big_layer()(big_input())
        assert len(calls) == 1


def test_environment_variables(monkeypatch):
    monkeypatch.setenv("SRECONV_TUNING", "model")
    assert tuning._env_mode() == "model"
    monkeypatch.setenv("SRECONV_TUNING", "nonsense")
    assert tuning._env_mode() == "benchmark"
    monkeypatch.setenv("SRECONV_WORKSPACE_MB", "2")
    assert tuning._env_workspace() == 2 * 2**20
    monkeypatch.delenv("SRECONV_WORKSPACE_MB")
    assert tuning._env_workspace() == tuning.DEFAULT_WORKSPACE_BYTES


@pytest.mark.slow
def test_retain_freed_memory_in_a_fresh_process():
    """The allocator setting is process-wide and irreversible: try it in a child process."""
    import subprocess
    import sys

    code = "from sreconv.nn.tuning import retain_freed_memory; print(retain_freed_memory())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    expected = "True" if sys.platform.startswith("linux") else result.stdout.strip()
    assert result.stdout.strip() == expected


class TestTiming:
    def test_fast_candidates_get_many_runs_and_slow_ones_one(self):
        calls = {"fast": 0, "slow": 0}

        def fast():
            calls["fast"] += 1

        def slow():
            calls["slow"] += 1
            time.sleep(tuning.TIMING_BUDGET_S * 1.2)

        times = tuning._time_candidates({"fast": fast, "slow": slow}, torch.device("cpu"))
        assert calls == {"fast": 1 + tuning.TIMING_MAX_REPEATS, "slow": 2}  # warm-up + timed runs
        assert times["fast"] < times["slow"] and times["slow"] >= tuning.TIMING_BUDGET_S * 1e3

    def test_a_typical_run_counts_not_the_fastest_or_an_outlier(self):
        # warm-up, then one lucky fast run among typical ones, then one descheduled run
        durations = iter([0.0, 0.001, 0.008, 0.008, 0.008, 0.008, 0.04] + [0.008] * 30)

        def varying():
            time.sleep(next(durations))

        times = tuning._time_candidates({"path": varying}, torch.device("cpu"))
        assert 7.0 < times["path"] < 20.0
