// The console's test call: microphone -> WebSocket (16-bit PCM, 16 kHz) -> the call pipeline; the bot's voice
// back through an AudioWorklet that tells the server (marks) how far it has played.
"use strict";

const RATE = 16000;
const state = { ws: null, context: null, stream: null, played: 0 };
window.softphone = state;

function show(id, text) { document.getElementById(id).textContent = text; }

function addTurn(turn) {
  const li = document.createElement("li");
  li.className = turn.speaker;
  const who = document.createElement("b");
  who.textContent = turn.speaker + (turn.action ? " · " + turn.action : "");
  li.appendChild(who);
  const text = document.createElement("span");
  text.textContent = " " + (turn.text || "");  // what the caller said is text, never markup
  li.appendChild(text);
  const facts = [];
  if (turn.intent) facts.push(turn.intent + " " + (turn.confidence || 0).toFixed(2));
  if (turn.rule) facts.push("rule " + turn.rule);
  if (turn.queue) facts.push("queue " + turn.queue);
  if (turn.reason) facts.push("reason " + turn.reason);
  if (facts.length) {
    const small = document.createElement("small");
    small.textContent = " [" + facts.join(" · ") + "]";
    li.appendChild(small);
  }
  document.getElementById("turns").appendChild(li);
}

async function start() {
  const csrf = document.body.dataset.csrf;
  state.context = new AudioContext({ sampleRate: RATE });
  await state.context.audioWorklet.addModule("/static/softphone-worklet.js");
  state.stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: false } });
  const mic = state.context.createMediaStreamSource(state.stream);
  const capture = new AudioWorkletNode(state.context, "capture");
  const player = new AudioWorkletNode(state.context, "player");
  mic.connect(capture);
  player.connect(state.context.destination);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/console/call?csrf=${encodeURIComponent(csrf)}`);
  ws.binaryType = "arraybuffer";
  state.ws = ws;
  capture.port.onmessage = (event) => {
    const { pcm, level } = event.data;
    document.getElementById("mic-level").style.width = Math.min(100, level * 300) + "%";
    if (ws.readyState === WebSocket.OPEN) ws.send(pcm);
  };
  player.port.onmessage = (event) => {
    if (event.data.mark && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "mark", name: event.data.mark }));
    if (event.data.played) { state.played += event.data.played; show("bot-audio", (state.played / RATE).toFixed(1)); }
  };
  ws.onopen = () => { show("call-state", "connected"); toggle(true); };
  ws.onmessage = (event) => {
    if (typeof event.data !== "string") { player.port.postMessage({ pcm: event.data }, [event.data]); return; }
    const message = JSON.parse(event.data);
    if (message.type === "mark") player.port.postMessage({ mark: message.name });
    else if (message.type === "clear") player.port.postMessage({ clear: true });
    else if (message.type === "turn") addTurn(message);
    else if (message.type === "end") show("outcome", `${message.outcome}${message.reason ? " · " + message.reason : ""}${message.queue ? " · " + message.queue : ""}`);
  };
  ws.onclose = (event) => { show("call-state", "ended" + (event.reason ? ": " + event.reason : "")); stop(); };
}

function stop() {
  toggle(false);
  if (state.stream) state.stream.getTracks().forEach((track) => track.stop());
  if (state.ws && state.ws.readyState === WebSocket.OPEN) { state.ws.send(JSON.stringify({ type: "hangup" })); state.ws.close(); }
}

function toggle(inCall) {
  document.getElementById("call").disabled = inCall;
  document.getElementById("hangup").disabled = !inCall;
  document.querySelectorAll(".key").forEach((key) => { key.disabled = !inCall; });
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("call").addEventListener("click", () => start().catch((error) => show("call-state", "error: " + error)));
  document.getElementById("hangup").addEventListener("click", stop);
  document.querySelectorAll(".key").forEach((key) => key.addEventListener("click", () => {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify({ type: "dtmf", digit: key.dataset.digit }));
  }));
});
