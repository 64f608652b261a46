"""The ``callbot`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from callbot.errors import CallbotError
from callbot.mailbox.commands import add_commands as add_mailbox_commands
from callbot.settings import Settings
from callbot.speech.commands import add_commands as add_speech_commands

if TYPE_CHECKING:
    from callbot.access.users import TokenInfo, UserStore
    from routing.bot_folder import BotFolder


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    # what callbot writes (the database, recordings, transcripts, logs, tokens) is for its own user only
    os.umask(0o077)
    try:
        code: int = args.run(args)
    except CallbotError as exc:
        print(f"callbot: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


def _parser() -> argparse.ArgumentParser:
    from callbot import __version__

    parser = argparse.ArgumentParser(prog="callbot", description=__doc__)
    parser.add_argument("--version", action="version", version=f"callbot {__version__}")
    commands = parser.add_subparsers(title="commands")

    serve = commands.add_parser("serve", help="serve the bot (telephony webhooks, API, metrics)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--bot", type=Path, help="bot folder (default: CALLBOT_BOT_DIR or bots/fr)")
    serve.set_defaults(run=_serve)

    models = commands.add_parser("models", help="install and list speech models").add_subparsers(title="models")
    pull = models.add_parser(
        "pull", help="download a language's Vosk model and piper voice, or a Whisper model (pinned, verified)"
    )
    pull.add_argument("language", choices=["fr", "en", "whisper-base"], help="a language, or a Whisper model")
    pull.set_defaults(run=_models_pull)
    imp = models.add_parser("import", help="install a model folder, archive or voice copied by hand")
    imp.add_argument("path", type=Path)
    imp.add_argument("--language", help="language code when the name does not tell it")
    imp.set_defaults(run=_models_import)
    lst = models.add_parser("list", help="list installed models")
    lst.add_argument("--json", action="store_true", help="a JSON list")
    lst.set_defaults(run=_models_list)

    nlu = commands.add_parser("nlu", help="train the bot's NLU").add_subparsers(title="nlu")
    train = nlu.add_parser("train", help="train the Rasa NLU model (skipped when data and config are unchanged)")
    train.add_argument("--bot", type=Path)
    train.add_argument("--force", action="store_true", help="train even if an up-to-date model exists")
    train.set_defaults(run=_nlu_train)
    evaluate = nlu.add_parser("evaluate", help="measure the NLU: accuracy, macro-F1, out-of-scope rejection")
    evaluate.add_argument("--bot", type=Path, help="cross-validate this bot's nlu.yml with its config and policy")
    evaluate.add_argument("--train", type=Path, help="training data (Rasa YAML or CSV text,label)")
    evaluate.add_argument("--test", type=Path, help="test data (Rasa YAML or CSV text,label)")
    evaluate.add_argument("--config", type=Path, help="Rasa pipeline to evaluate (default: the bot's config.yml)")
    evaluate.add_argument("--folds", type=int, default=5)
    evaluate.add_argument(
        "--off-topic", type=Path, help="off-topic sentences, one per line (default: the bot's tests/out_of_scope.txt)"
    )
    evaluate.add_argument("--report", type=Path, help="write the full report as JSON")
    evaluate.set_defaults(run=_nlu_evaluate)

    routing = commands.add_parser("routing", help="check and explain the routing rules").add_subparsers(title="routing")
    check = routing.add_parser("check", help="validate the bot folder (bot.yml, routing.yml, nlu.yml intents)")
    check.add_argument("--bot", type=Path)
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.set_defaults(run=_routing_check)
    explain = routing.add_parser("explain", help="the routing decision and its trace for a hypothetical call")
    explain.add_argument("--bot", type=Path)
    explain.add_argument("--intent", required=True, help="the intent heard (nlu_fallback: not understood)")
    explain.add_argument("--at", help="ISO time (local to the bot's time zone unless it has an offset); default now")
    explain.add_argument("--caller", default="", help="caller number, E.164")
    explain.add_argument("--confidence", type=float, default=1.0)
    explain.add_argument("--entity", action="append", default=[], metavar="NAME=VALUE")
    explain.add_argument("--failed-turns", type=int, default=0)
    explain.add_argument("--agent", action="append", default=[], metavar="ID=STATUS", help="override an agent's status")
    explain.add_argument(
        "--waiting", action="append", default=[], metavar="QUEUE=N", help="calls already waiting in a queue"
    )
    explain.add_argument("--json", action="store_true")
    explain.set_defaults(run=_routing_explain)

    users = commands.add_parser("users", help="console and API users").add_subparsers(title="users")
    add = users.add_parser("add", help="add a user (the password is asked, or read from stdin)")
    add.add_argument("username")
    add.add_argument(
        "--role",
        required=True,
        choices=["admin", "ops", "trainee", "acd"],
        help="acd: a program reporting agent statuses and reading queues, nothing else",
    )
    add.add_argument("--name", default="", help="display name")
    add.add_argument("--language", default="fr", choices=["fr", "en"], help="console language")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(run=_users_add)
    passwd = users.add_parser("passwd", help="set a user's password (ends the user's sessions and API tokens)")
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true")
    passwd.set_defaults(run=_users_passwd)
    listing = users.add_parser("list", help="list users")
    listing.add_argument("--json", action="store_true", help="a JSON list")
    listing.set_defaults(run=_users_list)
    for verb, active in (("disable", False), ("enable", True)):
        switch = users.add_parser(
            verb, help="disable a user (their sessions and API tokens end at once)" if not active else "enable a user"
        )
        switch.add_argument("username")
        switch.set_defaults(run=_users_active, active=active)
    token = users.add_parser(
        "token",
        help="API tokens: `token USER` (or `token create USER`) creates one, shown once; "
        "`token list [USER]` lists them with their last use; `token revoke ID` revokes one",
    )
    token.add_argument("words", nargs="+", metavar="create USER | list [USER] | revoke ID | USER")
    token.add_argument("--name", default="api", help="what a new token is for, e.g. acd")
    token.add_argument("--json", action="store_true", help="`token list` as a JSON list")
    token.add_argument(
        "--expires-days", type=int, default=365, help="a new token's lifetime in days (0: until revoked)"
    )
    token.set_defaults(run=_users_token)

    add_mailbox_commands(commands)
    add_speech_commands(commands)

    db = commands.add_parser("db", help="the database").add_subparsers(title="db")
    db.add_parser(
        "upgrade", help="apply the schema migrations (callbot serve does it at startup; for deploy pipelines)"
    ).set_defaults(run=_db_upgrade)

    call = commands.add_parser("call", help="place a simulated phone call against a running server")
    call.add_argument("audio", type=Path, help="WAV file the caller says (any rate; converted to 8 kHz mu-law)")
    call.add_argument("--url", default="http://127.0.0.1:8080")
    call.add_argument("--dtmf", default="", help="keys pressed after speaking, one bot turn each (e.g. 10)")
    call.add_argument(
        "--auth-token",
        default=os.environ.get("CALLBOT_TWILIO_AUTH_TOKEN"),
        help="Twilio auth token used to sign requests (default: CALLBOT_TWILIO_AUTH_TOKEN)",
    )
    call.add_argument(
        "--api-token",
        default=os.environ.get("CALLBOT_API_TOKEN"),
        help="API token to read back the turns the server recorded (default: CALLBOT_API_TOKEN)",
    )
    call.add_argument("--out", type=Path, help="write what the bot said (as heard by the caller) to this WAV")
    call.add_argument("--speed", type=float, default=1.0, help="send and play audio this many times real time")
    call.add_argument("--from", dest="caller", default="+33612345678", help="caller number")
    call.add_argument(
        "--barge-in",
        action="store_true",
        help="act as soon as the greeting starts instead of listening to it to the end",
    )
    call.add_argument(
        "--keys-first",
        action="store_true",
        help="press the keys before speaking (e.g. --dtmf 9 --keys-first: choose to leave a message, then say it)",
    )
    call.add_argument(
        "--transport",
        choices=["twilio", "audiosocket", "websocket"],
        default="twilio",
        help="the line: Twilio Media Streams, Asterisk AudioSocket, or Asterisk chan_websocket (default: twilio)",
    )
    call.add_argument(
        "--audiosocket", metavar="HOST:PORT", help="the server's AudioSocket listener (default: the URL's host, 9092)"
    )
    call.add_argument(
        "--format",
        default="",
        help="the line's codec: slin or slin16 for AudioSocket; ulaw, alaw, slin, slin16 for chan_websocket",
    )
    call.add_argument("--json-control", action="store_true", help="chan_websocket: control messages in JSON")
    call.add_argument("--dtx", action="store_true", help="the line sends nothing while the caller is silent")
    call.add_argument(
        "--media-auth",
        metavar="USER:PASSWORD",
        default=os.environ.get("CALLBOT_ASTERISK_MEDIA_AUTH"),
        help="chan_websocket: the credentials Asterisk's websocket_client.conf sends",
    )
    call.add_argument(
        "--ari-listen",
        metavar="HOST:PORT",
        help="play Asterisk's ARI here (the server's CALLBOT_ARI_URL must point at it): the call enters its Stasis "
        "application and the decision is carried out through ARI",
    )
    call.add_argument("--ari-user", default="callbot")
    call.add_argument("--ari-password", default=os.environ.get("CALLBOT_ARI_PASSWORD", "callbot"))
    call.add_argument("--ari-app", default="callbot")
    call.add_argument("--json", action="store_true", help="print one JSON object")
    call.set_defaults(run=_call)
    return parser


def _settings(bot: Path | None = None) -> Settings:
    settings = Settings()
    return settings.model_copy(update={"bot_dir": bot}) if bot else settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from callbot.app import create_app
    from callbot.drain import DrainingServer
    from callbot.logs import configure_logging

    settings = _settings(args.bot)
    if args.host:
        settings = settings.model_copy(update={"host": args.host})
    if args.port:
        settings = settings.model_copy(update={"port": args.port})
    configure_logging(settings.log_level, settings.log_format)
    # httpx logs full request URLs at INFO, and Rasa's URLs carry its auth token
    logging.getLogger("httpx").setLevel(logging.WARNING)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's lines go through the same handler (and format) as ours
        proxy_headers=True,
        ws_max_size=256 * 1024,
        # media messages are base64 audio: compression costs CPU on every 20 ms frame for almost no gain
        ws_per_message_deflate=False,
    )
    DrainingServer(config, app.state.resources).run()
    return 0


def _models_pull(args: argparse.Namespace) -> int:
    from callbot.model_store import pull

    if args.language.startswith("whisper-"):
        from callbot.model_store.whisper import pull_whisper

        model = pull_whisper(args.language, Settings().models_dir, progress=lambda line: print(line, file=sys.stderr))
        print(f"{model.language}\t{model.kind}\t{model.name}\t{model.path}")
        return 0
    for model in pull(args.language, Settings().models_dir, progress=lambda line: print(line, file=sys.stderr)):
        print(f"{model.language}\t{model.kind}\t{model.name}\t{model.path}")
    return 0


def _models_import(args: argparse.Namespace) -> int:
    from callbot.model_store import import_model

    for model in import_model(args.path, Settings().models_dir, language=args.language):
        print(f"imported {model.language}\t{model.kind}\t{model.name}\t{model.path}")
    return 0


def _models_list(args: argparse.Namespace) -> int:
    from callbot.model_store import list_models

    models = list_models(Settings().models_dir)
    if args.json:
        fields = ("language", "kind", "name", "size_bytes")
        print(json.dumps([{**{f: getattr(m, f) for f in fields}, "path": str(m.path)} for m in models]))
        return 0
    if not models:
        print("no models installed; run `callbot models pull fr` or `callbot models import PATH`")
    for model in models:
        print(f"{model.language}\t{model.kind}\t{model.name}\t{model.size_bytes / 1e6:.0f} MB\t{model.path}")
    return 0


def _nlu_train(args: argparse.Namespace) -> int:
    from nlu.publishing import publish
    from nlu.training import train

    settings = _settings(args.bot)
    result = train(settings.bot_dir, settings.models_dir, settings.rasa_venv, force=args.force)
    publish(settings.bot_dir, settings.models_dir, result.model_path)
    state = "up to date" if result.skipped else f"trained in {result.seconds:.0f} s"
    print(f"{result.model_path} ({state}, published); a running `callbot serve` loads it within seconds")
    return 0


def _nlu_evaluate(args: argparse.Namespace) -> int:
    from nlu.evaluation_report import EvaluationRequest, format_report, run_evaluation

    settings = Settings()
    if args.bot is None and (args.train is None or args.test is None):
        args.bot = settings.bot_dir
    request = EvaluationRequest(
        args.bot,
        args.train,
        args.test,
        args.config,
        args.folds,
        args.off_topic,
        settings.models_dir,
        settings.rasa_venv,
    )
    report = run_evaluation(request)
    print(format_report(report))
    if args.report:
        args.report.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


def _routing_check(args: argparse.Namespace) -> int:
    from routing.bot_folder import load_bot_folder

    settings = _settings(args.bot)
    folder = load_bot_folder(settings.bot_dir)
    routing = folder.routing
    if args.json:
        summary = {
            "bot": str(settings.bot_dir),
            "ok": True,
            "language": folder.bot.language,
            "timezone": routing.timezone,
            "intents": sorted(folder.bot.intents),
            "skills": sorted(routing.skills),
            "queues": sorted(routing.queues),
            "agents": sorted(routing.agents),
            "rules": [rule.id for rule in routing.rules],
        }
        print(json.dumps(summary, ensure_ascii=False))
        return 0
    print(
        f"{settings.bot_dir}: ok — {len(folder.bot.intents)} intents, {len(routing.skills)} skills, "
        f"{len(routing.queues)} queues, {len(routing.agents)} agents, {len(routing.rules)} rules "
        f"({routing.timezone})"
    )
    return 0


def _routing_explain(args: argparse.Namespace) -> int:
    from routing.explain import Hypothesis, explain, format_explanation, parse_time, trace_json
    from routing.live import LiveState
    from routing.routing_config import AGENT_STATUSES

    folder = load_bot_folder_for(args.bot)
    live = LiveState(folder.routing)
    for item in args.agent:
        agent_id, _, status = item.partition("=")
        if agent_id not in folder.routing.agents or status not in AGENT_STATUSES:
            raise CallbotError(f"--agent {item}: give ID=STATUS with an agent of routing.yml and {AGENT_STATUSES}")
        live.set_status(agent_id, status)
    for item in args.waiting:
        queue, _, count = item.partition("=")
        if queue not in folder.routing.queues or not count.isdigit():
            raise CallbotError(f"--waiting {item}: give QUEUE=N with a queue of routing.yml")
        for n in range(int(count)):
            live.enqueue(f"explain-{queue}-{n}", queue, 0)
    try:
        at = parse_time(args.at, folder.router.zone)
    except ValueError as exc:
        raise CallbotError(f"--at {args.at}: not an ISO time such as 2026-12-24T17:30 ({exc})") from exc
    entities = dict(item.partition("=")[::2] for item in args.entity)
    hypothesis = Hypothesis(args.intent, at, args.caller, args.confidence, entities, args.failed_turns)
    routed = explain(folder, hypothesis, live.snapshot())
    if args.json:
        print(json.dumps(trace_json(folder, hypothesis, routed), ensure_ascii=False, indent=2))
    else:
        print(format_explanation(folder, hypothesis, routed))
    return 0


def load_bot_folder_for(bot: Path | None) -> BotFolder:
    from routing.bot_folder import load_bot_folder

    return load_bot_folder(_settings(bot).bot_dir)


def _user_store() -> UserStore:
    from callbot.access.users import UserStore
    from callbot.storage.database import make_engine, migrate

    engine = make_engine(Settings().effective_database_url)
    migrate(engine)
    return UserStore(engine)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    import getpass

    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise CallbotError("the two passwords differ")
    return first


def _db_upgrade(args: argparse.Namespace) -> int:
    from sqlalchemy import text

    from callbot.storage.database import make_engine, migrate

    engine = make_engine(Settings().effective_database_url)
    migrate(engine)
    with engine.connect() as connection:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    print(f"database at revision {revision} ({engine.url.render_as_string()})")
    engine.dispose()
    return 0


def _users_add(args: argparse.Namespace) -> int:
    user = _user_store().add_user(
        args.username, _read_password(args.password_stdin), args.role, args.name, args.language
    )
    print(f"added {user.username} ({user.role})")
    return 0


def _users_passwd(args: argparse.Namespace) -> int:
    _user_store().set_password(args.username, _read_password(args.password_stdin))
    print(f"password of {args.username} changed; their console sessions are closed")
    return 0


def _users_list(args: argparse.Namespace) -> int:
    accounts = _user_store().list_accounts()
    if args.json:
        fields = ("username", "role", "language", "display_name")
        print(json.dumps([{**{f: getattr(u, f) for f in fields}, "active": active} for u, active in accounts]))
        return 0
    for user, _ in accounts:
        print(f"{user.username}\t{user.role}\t{user.language}\t{user.display_name}")
    return 0


def _token_json(info: TokenInfo) -> dict[str, str | None]:
    moments = {"created_at": info.created_at, "last_used_at": info.last_used_at, "expires_at": info.expires_at}
    return {
        "id": info.id,
        "user": info.username,
        "name": info.name,
        "state": info.state(),
        **{key: moment.isoformat() if moment else None for key, moment in moments.items()},
    }


def _users_active(args: argparse.Namespace) -> int:
    _user_store().set_active(args.username, args.active)
    print(f"{args.username} {'enabled' if args.active else 'disabled; their sessions and API tokens ended'}")
    return 0


def _users_token(args: argparse.Namespace) -> int:
    from datetime import timedelta

    verb, rest = (
        (args.words[0], args.words[1:]) if args.words[0] in ("create", "list", "revoke") else ("create", args.words)
    )
    users = _user_store()
    if verb == "list" and len(rest) <= 1:
        tokens = users.list_tokens(rest[0] if rest else None)
        if args.json:
            print(json.dumps([_token_json(info) for info in tokens]))
            return 0
        print("id\tuser\tname\tstate\tcreated\tlast used\texpires")
        for info in tokens:
            when = [f"{t:%Y-%m-%d %H:%M}" if t else "-" for t in (info.created_at, info.last_used_at, info.expires_at)]
            print("\t".join([info.id, info.username, info.name, info.state(), *when]))
        return 0
    if verb == "revoke" and len(rest) == 1:
        revoked = users.revoke_token(rest[0])
        print(f"token {revoked.id} ({revoked.name}, of {revoked.username}) revoked")
        return 0
    if verb == "create" and len(rest) == 1:
        if args.expires_days < 0:
            raise CallbotError("--expires-days: 0 (until revoked) or a number of days")
        lifetime = timedelta(days=args.expires_days) if args.expires_days else None
        print(users.new_api_token(rest[0], args.name, lifetime))
        return 0
    raise CallbotError("usage: callbot users token [create] USER | token list [USER] | token revoke ID")


def _call(args: argparse.Namespace) -> int:
    from callbot.simulator import place_call, write_wav

    if not args.audio.is_file():
        raise CallbotError(f"{args.audio}: no such file")
    media_auth = tuple(args.media_auth.split(":", 1)) if args.media_auth and ":" in args.media_auth else None
    report, played = place_call(
        args.url,
        args.audio,
        transport=args.transport,
        dtmf=args.dtmf,
        auth_token=args.auth_token,
        api_token=args.api_token,
        speed=args.speed,
        caller=args.caller,
        barge_in=args.barge_in,
        keys_first=args.keys_first,
        audiosocket=args.audiosocket,
        line_format=args.format,
        json_control=args.json_control,
        dtx=args.dtx,
        media_auth=media_auth,
        ari_listen=args.ari_listen,
        ari_user=args.ari_user,
        ari_password=args.ari_password,
        ari_app=args.ari_app,
    )
    if args.out:
        write_wav(args.out, played)
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False))
        return 0
    print(
        f"call {report.call_id}: {report.outcome}" + (f" -> {report.transfer_target}" if report.transfer_target else "")
    )
    print(f"first bot audio after {report.first_audio_ms} ms; bot spoke {report.bot_audio_s:.1f} s")
    if report.turns_error:
        print(f"turns not shown: {report.turns_error}")
    for turn in report.turns:
        intent = f" [{turn['intent']} {turn['confidence']:.2f}]" if turn.get("intent") else ""
        latency = f" ({turn['latency_ms']:.0f} ms)" if turn.get("latency_ms") is not None else ""
        print(f"  {turn['speaker']:>6}: {turn['text']}{intent}{latency}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
