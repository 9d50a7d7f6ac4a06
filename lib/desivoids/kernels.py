"""The stage notebooks' kernels: how they are configured, and one started ahead of its stage.

A stage's notebook needs a kernel: started by papermill when the stage starts, a kernel spends
about 0.6 s starting and then about 1.5 to 3 s importing numpy, pandas, pyarrow, matplotlib and
the stage's package (measured at DR1 scale: ``benchmarks/results/pipeline.md``), on the chain of
stages that sets the run's length. :class:`KernelAhead` starts the next stage's kernel while the
stage before it runs (on the core that stage leaves free) and imports those modules there.

The imports run silently (no execution count, no output) as statements that bind no name in the
notebook's namespace: the executed notebook is the one a fresh kernel gives. Any output from
them (a warning, an error) discards the kernel, so that the stage runs in a fresh one where the
same output fails the stage as before (warnings are errors). A kernel is used only by a stage
whose environment and working folder are those it was started with.
"""
from __future__ import annotations

import asyncio
import functools
import os
import threading
from pathlib import Path
from typing import Iterable

#: the longest path of a Unix socket (sun_path) on Linux, less its terminating NUL
_SOCKET_PATH_MAX = 107
#: seconds a kernel started ahead may take to start, then to import its modules
START_TIMEOUT = 60
IMPORT_TIMEOUT = 120
#: what every stage notebook imports first (each stage's package is added by name)
COMMON_MODULES = ("matplotlib.pyplot", "desivoids.display", "desivoids.runinfo")
#: IPython's history in memory, as nbclient starts its kernels
_KERNEL_ARGS = ["--HistoryManager.hist_file=:memory:"]


def kernel_config():
    """The stage kernel talks to papermill over Unix sockets in Jupyter's runtime folder (IPC),
    not loopback TCP ports that any local user can reach (ipykernel warns about those on
    stderr, once per notebook); over TCP where that folder's path is too long for a socket's.

    The sockets' names are this kernel's own (``<runtime>/desivoids-<uuid>-ipc-<n>``):
    jupyter_client's default, ``kernel-ipc-<n>`` in the working folder, is the same for two
    kernels started at once from one folder (``desivoids run --jobs``), which then connect to
    each other's sockets."""
    import uuid

    from jupyter_core.paths import jupyter_runtime_dir
    from traitlets.config import Config

    config = Config()
    runtime = jupyter_runtime_dir()
    prefix = os.path.join(runtime, f"desivoids-{uuid.uuid4().hex}-ipc")
    if len(prefix) + len("-99") <= _SOCKET_PATH_MAX:
        os.makedirs(runtime, mode=0o700, exist_ok=True)
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = prefix
    return config


def stage_modules(stages: Iterable[str]) -> list[str]:
    """The modules a kernel for one of ``stages`` imports ahead: the common ones and each
    stage's package with its figures."""
    package = Path(__file__).parent
    mods = list(COMMON_MODULES)
    for name in stages:
        mods.append(f"desivoids.{name}")
        if (package / name / "figures.py").is_file():
            mods.append(f"desivoids.{name}.figures")
    return mods


def _import_code(modules: list[str]) -> str:
    """Statements that import ``modules`` and bind no name in the notebook's namespace."""
    return (f"for _desivoids_module in {tuple(modules)!r}:\n"
            "    __import__(_desivoids_module)\n"
            "del _desivoids_module\n")


async def _start(km, cwd: str, env: dict, modules: list[str]) -> bool:
    """Start ``km``'s kernel and import ``modules`` in it; whether it did so without a word."""
    await km.start_kernel(cwd=cwd, env=env, extra_arguments=list(_KERNEL_ARGS))
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=START_TIMEOUT)
        msg_id = kc.execute(_import_code(modules), silent=True, store_history=False,
                            allow_stdin=False)
        quiet = True
        while True:
            msg = await kc.get_iopub_msg(timeout=IMPORT_TIMEOUT)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status":
                if msg["content"]["execution_state"] == "idle":
                    break
            elif msg["msg_type"] != "execute_input":
                quiet = False  # a stream (a warning on stderr), an error or a display
        while True:
            reply = await kc.get_shell_msg(timeout=IMPORT_TIMEOUT)
            if reply["parent_header"].get("msg_id") == msg_id:
                return quiet and reply["content"]["status"] == "ok"
    finally:
        kc.stop_channels()


def shutdown(km, now: bool = False) -> None:
    """Shut ``km``'s kernel down and wait for its process (its CPU time then counts in this
    process's children's)."""
    async def down():
        try:
            if await km.is_alive():
                await km.shutdown_kernel(now=now)
        finally:
            await km.cleanup_resources()
    asyncio.run(down())


class KernelAhead:
    """At most one kernel started ahead of the stage that will use it (see the module's
    docstring); one per process that runs stage notebooks."""

    def __init__(self):
        self._km = None
        self._thread: threading.Thread | None = None
        self._key: tuple | None = None
        self._ok = False

    def start(self, cwd: Path, stages: Iterable[str]) -> None:
        """Start a kernel in ``cwd`` with this process's environment, and import there what
        ``stages``' notebooks import first, in a thread; :meth:`take` hands it over."""
        from jupyter_client.manager import AsyncKernelManager

        self.close()
        km = AsyncKernelManager(kernel_name="python3", config=kernel_config())
        env = dict(os.environ)
        self._km, self._key, self._ok = km, (str(cwd), env), False
        modules = stage_modules(stages)

        def boot():
            try:
                self._ok = asyncio.run(_start(km, str(cwd), env, modules))
            except Exception:  # a kernel that did not start is not used
                self._ok = False
        self._thread = threading.Thread(target=boot, name="kernel-ahead", daemon=True)
        self._thread.start()

    @property
    def pid(self) -> int | None:
        """The process of the kernel started ahead (not yet any stage's)."""
        provisioner = getattr(self._km, "provisioner", None)
        return getattr(provisioner, "pid", None)

    def _claim(self):
        """The kernel started ahead (its manager, None if none), no longer this object's, once
        its start has ended."""
        km, thread = self._km, self._thread
        self._km = self._thread = None
        if thread is not None:
            thread.join()
        return km

    def take(self, cwd: Path):
        """The kernel started ahead (its manager) if it started and imported quietly in
        ``cwd`` with this process's environment as it is now; else None (and it is shut
        down). The caller shuts the kernel it takes down."""
        km = self._claim()
        if km is None or (self._ok and self._key == (str(cwd), dict(os.environ))):
            return km
        shutdown(km, now=True)
        return None

    def close(self) -> None:
        """Shut down a kernel started ahead and not taken."""
        km = self._claim()
        if km is not None:
            shutdown(km, now=True)


def execute_in(km, nb, output: str, **kwargs):
    """papermill's ``execute_notebook`` in the started kernel ``km``, which is shut down after
    it as papermill shuts down a kernel it started (nbclient leaves a kernel it was given
    running, with its client's channels open)."""
    import papermill as pm

    return pm.execute_notebook(nb, output, engine_name=_engine(), km=km, **kwargs)


@functools.cache
def _engine() -> str:
    """Register (once) papermill's engine for a started kernel; its name."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines

    class Client(PapermillNotebookClient):
        def __init__(self, nb_man, km=None, **kw):
            super().__init__(nb_man, km=km, **kw)
            self.owns_km = True  # nbclient then cleans it up as a kernel of its own

    class Engine(NBClientEngine):
        """papermill's nbclient engine, in a kernel given as ``km``."""

        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False,
                                     stdout_file=None, stderr_file=None, start_timeout=60,
                                     execution_timeout=None, **kwargs):
            from papermill.engines import logger
            from papermill.utils import merge_kwargs, remove_args

            timeout = execution_timeout or kwargs.get("timeout")  # as papermill's own engine
            kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
            final = merge_kwargs(kwargs, timeout=timeout, startup_timeout=start_timeout,
                                 kernel_name=kernel_name, log=logger, log_output=log_output,
                                 stdout_file=stdout_file, stderr_file=stderr_file)
            return Client(nb_man, **final).execute()

    name = "desivoids-started-kernel"
    papermill_engines.register(name, Engine)
    return name
