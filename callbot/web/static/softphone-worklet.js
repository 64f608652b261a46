// Audio worklets of the test call: "capture" turns the microphone into 20 ms of 16-bit PCM per message;
// "player" plays the bot's 16-bit PCM and reports the marks it reaches, as a phone network does.
class Capture extends AudioWorkletProcessor {
  constructor() { super(); this.buffer = new Int16Array(320); this.length = 0; this.energy = 0; }
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      const sample = Math.max(-1, Math.min(1, channel[i]));
      this.energy += sample * sample;
      this.buffer[this.length++] = sample < 0 ? sample * 0x8000 : sample * 0x7fff;
      if (this.length === this.buffer.length) {
        const level = Math.sqrt(this.energy / this.length);
        this.port.postMessage({ pcm: this.buffer.buffer.slice(0), level });
        this.length = 0; this.energy = 0;
      }
    }
    return true;
  }
}

class Player extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = [];  // Float32Array chunks and {mark} items, in order
    this.offset = 0;
    this.port.onmessage = (event) => {
      const data = event.data;
      if (data.pcm) {
        const ints = new Int16Array(data.pcm);
        const floats = new Float32Array(ints.length);
        for (let i = 0; i < ints.length; i++) floats[i] = ints[i] / 0x8000;
        this.queue.push(floats);
      } else if (data.mark) {
        this.queue.push({ mark: data.mark });
      } else if (data.clear) {
        // barge-in: drop the audio, report the marks it held (as Twilio does)
        this.queue.filter((item) => item.mark).forEach((item) => this.port.postMessage({ mark: item.mark }));
        this.queue = []; this.offset = 0;
      }
    };
  }
  process(inputs, outputs) {
    const out = outputs[0][0];
    let written = 0;
    while (written < out.length && this.queue.length) {
      const head = this.queue[0];
      if (head.mark) { this.port.postMessage({ mark: head.mark }); this.queue.shift(); continue; }
      const count = Math.min(out.length - written, head.length - this.offset);
      out.set(head.subarray(this.offset, this.offset + count), written);
      written += count; this.offset += count;
      if (this.offset === head.length) { this.queue.shift(); this.offset = 0; }
    }
    for (let i = written; i < out.length; i++) out[i] = 0;
    if (written) this.port.postMessage({ played: written });
    return true;
  }
}

registerProcessor("capture", Capture);
registerProcessor("player", Player);
