"""The probe server: one warm interpreter per run, a fresh forked child per probe, every
probe bounded by the kit whatever the module does, nothing left running.

See :mod:`conformance.probe`, :mod:`conformance.probe_host`, :mod:`conformance.probe_server`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conformance import probe_host
from conformance.probe import ProbeResult, import_probe, start_probe
from conformance.probe_host import shared_server


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "plain.py").write_text(
        "import os, sys\n"
        "with open(os.environ['PROBE_LOG'], 'a') as log:\n"
        "    log.write(f'{os.getpid()} {sys.path[:2]!r} {os.getcwd()}\\n')\n"
        "def callback(phase, config, data):\n    return None\n"
        "class Slow:\n"
        "    def __init__(self):\n        import time; time.sleep(3600)\n"
        "    def __call__(self, phase, config, data):\n        return None\n"
    )
    (tmp_path / "hangs.py").write_text(
        "import subprocess, sys, threading\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)'])\n"
        "open('grandchild.pid', 'w').write(str(child.pid))\n"
        "threading.Event().wait()\n"
    )
    (tmp_path / "exits.py").write_text("import os\nprint('bye')\nos._exit(3)\n")
    return tmp_path


@pytest.fixture(autouse=True)
def _log(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each probe takes the environment as it is when it starts (not the server's).
    monkeypatch.setenv("PROBE_LOG", str(folder / "imports.log"))


def _probe(folder: Path, spec: str, limit: float = 2.0, **options: Any) -> ProbeResult:
    module = spec.split(".")[0]
    if options:
        return start_probe(
            spec,
            module,
            cwd=str(folder),
            import_paths=(str(folder),),
            import_limit_s=limit,
            timeout_s=limit,
            **options,
        ).result()
    return import_probe(
        spec, cwd=str(folder), import_paths=(str(folder),), import_limit_s=limit
    ).result()


def test_probes_share_one_server_and_each_imports_the_module_afresh(folder: Path) -> None:
    first = _probe(folder, "plain.callback")
    server = shared_server()
    second = _probe(folder, "plain.callback", construct=True)
    assert shared_server() is server
    assert first.error is None and second.error is None
    assert first.style == "callback"
    imports = (folder / "imports.log").read_text().splitlines()
    pids = {line.split()[0] for line in imports}
    assert len(imports) == 2 and len(pids) == 2  # two children, each imported it
    assert str(server.info["pid"]) not in pids  # never in the server itself
    assert all(line.split(maxsplit=1)[1] == f"['', {str(folder)!r}] {folder}" for line in imports)


def test_one_server_serves_every_folder_each_child_as_if_started_there(
    folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = tmp_path_factory.mktemp("other")
    (other / "plain.py").write_text("def callback(phase, config, data):\n    return 'other'\n")
    (other / "elsewhere.py").write_text("def callback(phase, config, data):\n    return None\n")
    assert _probe(folder, "plain.callback").error is None
    server = shared_server()
    there = import_probe(
        "elsewhere.callback", cwd=str(other), import_paths=(str(other),), import_limit_s=2
    ).result()
    assert there.error is None and shared_server() is server
    missing = import_probe(
        "elsewhere.callback", cwd=str(folder), import_paths=(str(folder),), import_limit_s=2
    ).result()
    assert missing.error is not None and "no module found" in missing.error


def test_a_module_that_blocks_at_import_is_killed_at_the_limit_with_what_it_started(
    folder: Path,
) -> None:
    _probe(folder, "plain.callback")  # the server is warm: time the probe alone
    start = time.monotonic()
    result = _probe(folder, "hangs.anything", limit=1.0)
    took = time.monotonic() - start
    assert result.timed_out and result.overran == "import"
    assert result.exit_status == -9
    assert 1.0 <= took < 5.0
    grandchild = int((folder / "grandchild.pid").read_text())
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)  # the child's whole process group went


def test_a_module_that_ends_the_interpreter_is_reported_with_its_status(folder: Path) -> None:
    result = _probe(folder, "exits.callback")
    assert result.died_in == "import" and result.exit_status == 3
    assert "exited with status 3 while importing 'exits'" in result.error
    assert "bye" in result.output


def test_a_constructor_that_hangs_is_bounded_by_the_timeout(folder: Path) -> None:
    result = _probe(folder, "plain.Slow", limit=1.0, construct=True)
    assert result.overran == "load"
    assert "did not finish within 1 s" in result.error
    assert result.import_s is not None  # the child's findings before it was killed


def test_closing_the_server_ends_every_probe_still_running(folder: Path) -> None:
    pending = import_probe(
        "hangs.anything", cwd=str(folder), import_paths=(str(folder),), import_limit_s=60
    )
    deadline = time.monotonic() + 30
    while not (folder / "grandchild.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    server = shared_server()
    server_pid = server.process.pid
    probe_host.close_all()
    assert pending.result().error is not None
    grandchild = int((folder / "grandchild.pid").read_text())
    time.sleep(0.5)
    assert not _alive(grandchild)
    assert not _alive(server_pid)


def test_the_server_is_single_threaded_and_marked_with_its_owner(folder: Path) -> None:
    server = shared_server()
    _probe(folder, "plain.callback")
    assert server.info["threads"] == 1  # forking is safe: nothing else runs there
    command = Path(f"/proc/{server.process.pid}/cmdline").read_bytes().split(b"\0")
    assert b"raycallbacks-probe-server" in command
    assert f"--owner={os.getpid()}".encode() in command
    assert sys.executable.encode() == command[0]


# -------------------------------------------- Ray's import, when the server is first idle


@pytest.fixture
def slow_ray(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh server whose Ray import takes 3 s: a stand-in ``ray`` package first on its
    ``PYTHONPATH`` (the server imports ``ray.cloudpickle`` when it is first idle), and a
    module that notes whether Ray was loaded in the child that imported it."""
    stand_in = folder / "slow_ray_path" / "ray"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text("import time\ntime.sleep(3)\n")
    (stand_in / "cloudpickle.py").write_text("")
    (folder / "sees_ray.py").write_text(
        "import sys\n"
        "open('sees_ray.txt', 'a').write(f'{\"ray\" in sys.modules}\\n')\n"
        "def callback(phase, config, data):\n    return None\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(stand_in.parent))
    probe_host.close_all()  # the next probe starts a server with this environment
    yield folder
    probe_host.close_all()  # later tests get a server with the real Ray


def _seen(folder: Path) -> list[str]:
    return (folder / "sees_ray.txt").read_text().split()


def test_probes_queued_before_the_server_is_ready_never_wait_for_rays_import(
    slow_ray: Path,
) -> None:
    started = time.monotonic()
    result = _probe(slow_ray, "sees_ray.callback", limit=20)
    server = shared_server()
    assert result.error is None
    assert _seen(slow_ray) == ["False"]  # forked before the server imported Ray
    assert server.preloaded_at == 0.0  # and answered while that import was still going on
    assert time.monotonic() - started < 3


def test_a_probe_sent_while_the_server_imports_ray_waits_for_it_then_forks(
    slow_ray: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = shared_server()
    deadline = time.monotonic() + 30
    while server.preloading_since is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.preloading_since is not None, "the idle server did not start Ray's import"
    # Nothing forks during the import: a fork deadline that ignored it would expire there.
    monkeypatch.setattr(probe_host, "FORK_S", 0.5)
    result = _probe(slow_ray, "sees_ray.callback", limit=20)
    assert result.error is None and result.overran is None, result
    assert _seen(slow_ray) == ["True"]  # forked with Ray loaded
    assert server.preloaded_at > 0.0


def test_closing_an_idle_server_does_not_wait_for_rays_import(slow_ray: Path) -> None:
    server = shared_server()
    deadline = time.monotonic() + 30
    while server.preloading_since is None and time.monotonic() < deadline:
        time.sleep(0.02)
    started = time.monotonic()
    probe_host.close_all()
    assert time.monotonic() - started < 1.5  # Ray's import had about 3 s to go
    assert not _alive(server.process.pid)


def test_a_server_stuck_importing_ray_fails_the_probe_in_time_and_is_replaced(
    slow_ray: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (slow_ray / "slow_ray_path" / "ray" / "__init__.py").write_text(
        "import threading\nthreading.Event().wait()\n"
    )
    monkeypatch.setattr(probe_host, "STARTUP_S", 1.0)
    server = shared_server()
    deadline = time.monotonic() + 30
    while server.preloading_since is None and time.monotonic() < deadline:
        time.sleep(0.02)
    started = time.monotonic()
    result = _probe(slow_ray, "sees_ray.callback", limit=20)
    assert time.monotonic() - started < 5
    assert "did not import Ray within 1 s" in (result.error or ""), result
    assert server.dead is not None
    time.sleep(0.5)
    assert not _alive(server.process.pid)
    assert shared_server() is not server  # the next probe gets a new server


def test_a_kit_that_dies_leaves_no_probe_folder_behind(folder: Path) -> None:
    # The kit's process starts a probe that hangs, then ends without any cleanup of its own
    # (as under SIGKILL or at a second Ctrl-C); the server sees the end of its input, ends
    # the probe and removes the run's probe folder.
    script = (
        "import os, sys, time\n"
        "from conformance.probe import import_probe\n"
        "from conformance.probe_host import shared_server\n"
        f"pending = import_probe('hangs.anything', cwd={str(folder)!r},"
        f" import_paths=({str(folder)!r},),"
        " import_limit_s=60)\n"
        "server = shared_server()\n"
        f"while not os.path.exists({str(folder / 'grandchild.pid')!r}):\n"
        "    time.sleep(0.05)\n"
        "print(server.folder, server.process.pid, flush=True)\n"
        "os._exit(0)\n"
    )
    kit = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = kit.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        kit.kill()
        out, err = kit.communicate()
        pytest.fail(f"the kit's process did not get that far: {out} {err}")
    assert kit.returncode == 0, err
    done = subprocess.CompletedProcess(kit.args, kit.returncode, out, err)
    probe_folder, server_pid = done.stdout.split()
    assert Path(probe_folder).name.startswith("raycallbacks-probes-")
    deadline = time.monotonic() + 15
    while (Path(probe_folder).exists() or _alive(int(server_pid))) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(probe_folder).exists()
    assert not _alive(int(server_pid))
    assert not _alive(int((folder / "grandchild.pid").read_text()))


def test_probe_files_live_in_the_servers_folder_and_go_with_the_probe(folder: Path) -> None:
    server = shared_server()
    _probe(folder, "plain.callback")
    assert Path(server.folder).is_dir()
    assert list(Path(server.folder).iterdir()) == []  # the probe's own folder is gone
    probe_host.close_all()
    assert not Path(server.folder).exists()
