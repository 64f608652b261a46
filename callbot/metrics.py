"""Prometheus metrics, one registry per app so that several apps (tests, benchmarks) never collide."""

from __future__ import annotations

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
)

from callbot import __version__

_LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # the standard process (CPU, memory, file descriptors), Python platform and GC metrics
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        Info("callbot_build", "The running version", registry=self.registry).info({"version": __version__})
        self.component_up = Gauge(
            "callbot_component_up",
            "1 when a component (database, asr, tts, nlu) is up, 0.5 degraded or starting, 0 unavailable",
            ["component"],
            registry=self.registry,
        )
        self.mailbox_backlog = Gauge(
            "callbot_mailbox_backlog",
            "Messages waiting: new (not taken), transcription (pending), notification (e-mail not sent)",
            ["kind"],
            registry=self.registry,
        )
        self.calls = Counter("callbot_calls_total", "Calls ended, by outcome", ["outcome"], registry=self.registry)
        self.active_calls = Gauge("callbot_active_calls", "Media streams in progress", registry=self.registry)
        self.turn_latency = Histogram(
            "callbot_turn_latency_seconds",
            "From the end of the caller's turn to the bot's first audio",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.first_audio = Histogram(
            "callbot_first_audio_seconds",
            "From stream start to the greeting's first audio frame",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.asr_rtf = Histogram(
            "callbot_asr_real_time_factor",
            "speech recognition seconds (Vosk CPU, or Whisper live mode) per second of caller audio, per call",
            buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0),
            registry=self.registry,
        )
        self.engine_cpu = Counter(
            "callbot_engine_cpu_seconds_total",
            "seconds spent in speech engines (CPU for Vosk and piper; Whisper live: time in detection and decoding)",
            ["engine"],
            registry=self.registry,
        )
        self.protocol_errors = Counter(
            "callbot_protocol_errors_total",
            "Rejected telephony messages",
            ["provider"],
            registry=self.registry,
        )
        self.messages = Counter(
            "callbot_mailbox_messages_total",
            "Messages taken for the overflow mailbox, by overflow reason",
            ["reason"],
            registry=self.registry,
        )
        self.stage_failures = Counter(
            "callbot_stage_failures_total",
            "Call stages that failed mid-call",
            ["stage"],
            registry=self.registry,
        )
