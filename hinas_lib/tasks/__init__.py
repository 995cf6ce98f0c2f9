"""Restoration tasks as plug-ins: one module per task, each a :class:`Task`
subclass registered by name (``task.task`` in a config).

* :mod:`.denoise`: additive white Gaussian noise (level: sigma, 0-255);
* :mod:`.sr`: MATLAB-bicubic super-resolution (level: scale 2, 3, 4);
* :mod:`.jpeg`: JPEG artefact removal (level: quality 1-100).

:func:`with_level` is the one way to move a config to another level (the CLI's
``--sigma``/``--quality``, the widgets, the zoo scripts): it asks the task which
fields that means (a blind denoiser's ``sigma_range`` is cleared, for one).
Adding a task: a module here, imported below; its data script; its tests.
"""
from __future__ import annotations

from typing import Optional, Type

from ..errors import ConfigError
from .base import PixelShuffleHead, ResidualHead, TASKS, Task, register_task
from .denoise import Denoise, bm3d_denoise
from .jpeg import JPEG_QUALITIES, JpegDeblock, jpeg_compress
from .sr import SR_SCALES, SuperResolution


def task_class(name: str) -> Type[Task]:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(TASKS)}")
    return TASKS[name]


def get_task(cfg) -> Task:
    """The task object of a :class:`~hinas_lib.config.TaskConfig` (or a whole Config)."""
    inner = getattr(cfg, "task", None)
    if not isinstance(inner, str):  # a whole Config: its task section
        cfg = inner
    return task_class(cfg.task)(cfg)


def with_level(cfg, level, *, flag: Optional[str] = None, source: str = "the config"):
    """``cfg`` (a whole Config) trained and evaluated at ``level``: noise sigma, SR scale,
    JPEG quality, whichever the task's level is.

    ``flag`` (e.g. ``"--sigma"``) names where the level came from: asking a task for
    a level of another kind is then a one-line error naming it (and ``source``, what
    the config is of). The new config is validated (ConfigError names the field).
    """
    cls = task_class(cfg.task.task)
    if flag is not None and flag != cls.level_flag:
        raise ConfigError(f"{flag}: {source} is for {cfg.task.task} ({cls(cfg.task).describe_level()}); "
                          f"its level is set with {cls.level_flag}")
    try:
        changes = cls.level_changes(level)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{flag or cls.level_name}: {e}") from None
    return cfg.replace(task=changes)


__all__ = ["Task", "Denoise", "SuperResolution", "JpegDeblock", "TASKS", "SR_SCALES", "JPEG_QUALITIES",
           "task_class", "get_task", "with_level", "register_task", "bm3d_denoise", "jpeg_compress",
           "ResidualHead", "PixelShuffleHead"]
