"""A run folder (``--out``) shared by search and retraining.

It holds ``config.yaml``, ``log.jsonl`` (one JSON record per epoch), the
resumable state (``checkpoint.pt`` / ``train_checkpoint.pt``) and, while a run
is using it, a lock file. One class does it for both engines:

* **Lock.** A second run into a folder in use stops at once with a message
  naming the other run (pid, host, start time, command). A lock left by a run
  that died on this host is taken over; one from another host is not (its
  process cannot be checked): the message says which file to delete.
* **Fresh or resume.** A fresh run refuses a folder that already holds a state
  file; ``resume`` loads it (``weights_only``) and checks that it was written
  with the same configuration; ``resume="auto"`` resumes when the state file is
  there and starts otherwise. Temporary files left by a write that was killed
  (``.NAME.*.tmp``) are removed first.
* **Several processes.** Only rank 0 touches the folder (other machines need
  not share it); every rank gets the same state or the same error.
"""
from __future__ import annotations

import atexit
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from . import distributed
from .checkpoint import CheckpointError, atomic_save, atomic_write_text, load_checkpoint
from .config import Config
from .runfiles import CONFIG_FILE, GENOTYPE_FILE, LOCK_NAME, LOG_FILE, MODEL_FILE, SEARCH_STATE, STATE_FILES

# what finished runs leave (a training writes its genotype.json when it starts: not a result there)
RESULT_FILES = {"search": (MODEL_FILE, GENOTYPE_FILE), "train": (MODEL_FILE,)}


class RunLockedError(CheckpointError):
    """The run folder is in use by another run."""


def same_config(saved: Dict, cfg: Config) -> bool:
    """Whether a checkpoint's config is ``cfg`` (fields added since it was written take their defaults)."""
    try:
        return Config.from_dict(saved).to_dict() == cfg.to_dict()
    except ValueError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """An exclusive lock file in a run folder (released on close or at exit)."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK_NAME
        self.held = False

    def acquire(self) -> None:
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)[:300]}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                other = self._read()
                if not other and self._age_s() > 5:  # empty or garbage, and not being written now: stale
                    self.path.unlink(missing_ok=True)
                    continue
                if other.get("pid") == me["pid"] and other.get("host") == me["host"]:
                    self.held = True  # this process already holds it (e.g. a second engine in a notebook)
                    return
                if other.get("host") == me["host"] and isinstance(other.get("pid"), int) and not _alive(other["pid"]):
                    self.path.unlink(missing_ok=True)  # left by a run that died: take it over
                    continue
                raise RunLockedError(
                    f"{self.path.parent} is in use by another run (pid {other.get('pid', '?')} on "
                    f"{other.get('host', '?')}, started {other.get('started', '?')}: {other.get('command', '?')}); "
                    f"wait for it or choose another --out (if that run is gone, delete {self.path})") from None
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(me, f)
            except BaseException:  # e.g. a full disk: leave no empty lock behind
                self.path.unlink(missing_ok=True)
                raise
            self.held = True
            atexit.register(self.release)
            return
        raise RunLockedError(f"could not lock {self.path.parent}: the lock file keeps reappearing")

    def _age_s(self) -> float:
        try:
            return time.time() - self.path.stat().st_mtime
        except OSError:
            return 0.0

    def _read(self) -> Dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def release(self) -> None:
        if self.held:
            self.held = False
            if self._read().get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)


class RunDir:
    """The run folder of one search or retraining (``out=None``: no files at all).

    Args:
        out: the folder, or None to run without files.
        dist: this process's place among the ranks; only rank 0 reads and writes.
        state_file: the resumable state's file name.
        kind: the ``kind`` entry the state checkpoint carries (``search`` / ``train``).
    """

    def __init__(self, out: Optional[str | Path], dist: distributed.DistInfo, *, state_file: str, kind: str):
        self.out = Path(out) if out is not None else None
        self.dist, self.state_file, self.kind = dist, state_file, kind
        self.writes = self.out is not None and dist.is_main
        self.lock = RunLock(self.out) if self.writes else None
        self.saved_step: Optional[int] = None  # the step of the last checkpoint on disk

    @property
    def state_path(self) -> Optional[Path]:
        return None if self.out is None else self.out / self.state_file

    def open(self, cfg: Config, *, resume: bool | str,
             check: Optional[Callable[[Dict], None]] = None) -> Optional[Dict]:
        """Lock the folder and return the state to resume from (``None`` for a fresh run).

        ``resume``: True, False, or ``"auto"`` (resume when the folder holds the state file).
        ``check(state)`` may raise CheckpointError for a state this run cannot continue.
        """
        if resume not in (True, False, "auto"):
            raise ValueError(f"resume: True, False or 'auto', got {resume!r}")
        if self.out is None:
            if resume is True:
                raise ValueError("resume needs an output directory")
            return None
        if str(self.out) in ("", "."):
            raise ValueError("--out: give the run folder a name (an empty path would write into the current folder)")
        payload: Dict[str, Any] = {}
        if self.writes:
            try:
                self.out.mkdir(parents=True, exist_ok=True)
                self.lock.acquire()
                self._remove_stale_temp_files()
                if resume == "auto":  # decided on rank 0, where the folder is
                    resume = self.state_path.is_file()
                if resume:
                    payload["state"] = self._read_state(cfg, check)
                else:
                    self._check_fresh()
            except CheckpointError as e:
                payload["error"] = str(e)
                self.close()
        payload = distributed.broadcast_object(payload, self.dist)
        if "error" in payload:
            raise (RunLockedError if "in use by another run" in payload["error"] else CheckpointError)(
                payload["error"])
        state = payload.get("state")
        if state is not None:
            self.saved_step = int(state["step"])
        self.write_text(CONFIG_FILE, cfg.to_yaml())
        return state

    def _check_fresh(self) -> None:
        """A fresh run may only use a folder without another run's checkpoint or results.
        A run that stopped before its first checkpoint left nothing to resume: its
        log is started over (so no epoch is recorded twice)."""
        held = [n for n in STATE_FILES + RESULT_FILES.get(self.kind, ()) if (self.out / n).exists()]
        if held:
            what = "checkpoint" if any(n in STATE_FILES for n in held) else "results"
            hint = (" pass --resume to continue it or" if self.state_file in held else "")
            raise CheckpointError(f"{self.out} already holds a run's {what} ({', '.join(held)});{hint} "
                                  "choose another --out")
        (self.out / LOG_FILE).unlink(missing_ok=True)

    def _remove_stale_temp_files(self) -> None:
        # atomic writes go through ".NAME.XXXX.tmp"; a killed write leaves one behind
        for p in self.out.glob(".*.tmp"):
            try:
                p.unlink()
            except OSError:
                pass

    def _read_state(self, cfg: Config, check) -> Dict:
        path = self.state_path
        if not path.is_file():
            other = [n for n in STATE_FILES if n != self.state_file and (self.out / n).exists()]
            if other:
                raise CheckpointError(f"nothing to resume in {self.out}: it holds a "
                                      f"{'search' if other[0] == SEARCH_STATE else 'training'} run ({other[0]}), "
                                      f"not a {self.kind}")
            raise CheckpointError(f"nothing to resume: no checkpoint in {self.out} (the run stopped before its "
                                  "first one, or never started); run without --resume to start over")
        state = load_checkpoint(path, kind=self.kind)
        if not same_config(state["config"], cfg):
            raise CheckpointError(f"{path} was written by a {self.kind} with another configuration "
                                  f"(preset {state['config'].get('name')!r}, task "
                                  f"{state['config'].get('task', {}).get('task')!r}); resume it with that config")
        if check is not None:
            check(state)
        return state

    # ---- writing ---------------------------------------------------------------
    def save_state(self, state: Dict) -> None:
        """Write the resumable state atomically (rank 0); every rank records the step."""
        if self.writes:
            atomic_save(state, self.state_path)
        if self.out is not None:
            self.saved_step = int(state["step"])

    def write_text(self, name: str, text: str) -> None:
        if self.writes:
            atomic_write_text(self.out / name, text)

    def append_log(self, record: Dict) -> None:
        if self.writes:
            with open(self.out / LOG_FILE, "a") as f:
                f.write(json.dumps(record) + "\n")

    def rewrite_log(self, history: List[Dict]) -> None:
        """The log as the checkpoint knows it (records of a killed run's last epoch dropped)."""
        self.write_text(LOG_FILE, "".join(json.dumps(h) + "\n" for h in history))

    def hint(self) -> str:
        """What is safe on disk, for error messages."""
        if self.out is None:
            return "no output directory, nothing was written"
        if self.saved_step is None:
            return f"no checkpoint was written yet in {self.out}"
        return f"the last checkpoint ({self.state_path}, step {self.saved_step}) is intact"

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def reopen(self) -> None:
        """Take the lock again for another stretch of the same run (``run()`` called twice)."""
        if self.lock is not None and not self.lock.held:
            self.lock.acquire()


__all__ = ["RunDir", "RunLock", "RunLockedError", "LOCK_NAME", "same_config"]
