// Stream statistics: frame rate and bitrate from RTCPeerConnection.getStats() (or the DataChannel in
// PNG mode), and the ping round trip with its t1…t7 breakdown.

import { encodePing, pingBreakdown } from './protocol.js';
import { timeline } from './timeline.js';

const PING_INTERVAL_MS = 1000;

export class Stats {
  constructor() {
    this.reset();
    this.pings = new Map(); // sequence → performance.now() when sent
    this.sequence = 0;
    this.lastEcho = 0;
    this.latency = null; // breakdown of the newest echo
    this.echoes = []; // the latest breakdowns, oldest first
    this.rtts = []; // recent round trips, ms
  }

  reset() {
    this.prev = null; // previous sample, for rates
    this.current = {
      fps: 0, videoKbps: 0, audioKbps: 0, framesDecoded: 0, width: 0, height: 0, codec: '',
      audioSamples: 0, packetsLost: 0, jitterBufferMs: null, iceRttMs: null, channelKbps: 0,
    };
    this.channelBytes = 0;
  }

  // Ping timer; send(buf) delivers on the input channel. A latency measurement may ping faster
  // (`startPings(stats.send, 100)`) and read the breakdowns kept in `echoes`.
  startPings(send, intervalMs = PING_INTERVAL_MS) {
    clearInterval(this.pingTimer);
    this.send = send;
    this.pingTimer = setInterval(() => {
      this.sequence = (this.sequence % 0xffffffff) + 1; // 0 means "no ping" on the wire
      const seq = this.sequence;
      const t1 = performance.now();
      if (send(encodePing(seq, t1))) this.pings.set(seq, t1);
      // Forget pings never echoed (the PNG channel may lose them).
      for (const [s] of this.pings) if (s < seq - 30) this.pings.delete(s);
    }, intervalMs);
  }

  stopPings() {
    clearInterval(this.pingTimer);
  }

  // A ping echo arrives in several consecutive frames; only its first sighting counts.
  onPingEcho(ping) {
    if (!ping || ping.sequence === 0 || ping.sequence === this.lastEcho) return;
    const t1 = this.pings.get(ping.sequence);
    if (t1 === undefined) return;
    this.lastEcho = ping.sequence;
    this.pings.delete(ping.sequence);
    this.latency = pingBreakdown(ping, t1, performance.now());
    this.echoes.push(this.latency);
    if (this.echoes.length > 1000) this.echoes.shift();
    this.rtts.push(this.latency.rttMs);
    if (this.rtts.length > 20) this.rtts.shift();
  }

  // Sample the peer connection; display gives PNG/video frame counters.
  async sample(pc, display) {
    const now = performance.now();
    const s = { t: now, videoBytes: 0, audioBytes: 0, frames: 0, imageFrames: display.imageFrames,
      channelBytes: this.channelBytes };
    const c = this.current;
    if (pc) {
      const report = await pc.getStats();
      const codecs = {};
      report.forEach((r) => { if (r.type === 'codec') codecs[r.id] = r.mimeType; });
      report.forEach((r) => {
        if (r.type === 'inbound-rtp' && r.kind === 'video') {
          s.videoBytes = r.bytesReceived || 0;
          s.frames = r.framesDecoded || 0;
          c.framesDecoded = s.frames;
          c.width = r.frameWidth || 0;
          c.height = r.frameHeight || 0;
          c.codec = codecs[r.codecId] || c.codec;
          c.packetsLost = r.packetsLost || 0;
          c.jitterBufferMs = r.jitterBufferEmittedCount
            ? (1000 * r.jitterBufferDelay) / r.jitterBufferEmittedCount : null;
        } else if (r.type === 'inbound-rtp' && r.kind === 'audio') {
          s.audioBytes = r.bytesReceived || 0;
          c.audioSamples = r.totalSamplesReceived || 0;
        } else if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded') {
          if (r.currentRoundTripTime !== undefined) c.iceRttMs = r.currentRoundTripTime * 1000;
        }
      });
    }
    const p = this.prev;
    if (p) {
      const dt = (now - p.t) / 1000;
      const rate = (a, b) => Math.max(0, a - b) / dt;
      c.fps = display.mode === 'image' ? rate(s.imageFrames, p.imageFrames) : rate(s.frames, p.frames);
      c.videoKbps = (8 * rate(s.videoBytes, p.videoBytes)) / 1000;
      c.audioKbps = (8 * rate(s.audioBytes, p.audioBytes)) / 1000;
      c.channelKbps = (8 * rate(s.channelBytes, p.channelBytes)) / 1000;
    }
    this.prev = s;
    return c;
  }

  // The overlay text.
  render(display) {
    const c = this.current;
    const f = (x, d = 1) => (x === null || x === undefined ? '–' : x.toFixed(d));
    const lines = [];
    if (display.mode === 'image') {
      lines.push(`PNG ${display.width}x${display.height}  ${f(c.fps, 0)} rect/s  ${f(c.channelKbps, 0)} kbit/s`);
      if (display.staleSkipped) lines.push(`stale rects skipped ${display.staleSkipped}`);
    } else {
      lines.push(`${c.codec || 'video'} ${c.width}x${c.height}  ${f(c.fps, 0)} fps  ${f(c.videoKbps, 0)} kbit/s`);
      lines.push(`decoded ${c.framesDecoded}  lost ${c.packetsLost}  jitter buf ${f(c.jitterBufferMs)} ms`);
      const d = display.presentDelays;
      const c2p = display.captureDelays;
      if (d.length || c2p.length) {
        lines.push(`receive→display ${f(median(d))} ms  capture→display ${f(median(c2p))} ms`);
      }
    }
    lines.push(`audio ${f(c.audioKbps, 0)} kbit/s  ${c.audioSamples} samples`);
    const rtt = this.rtts.length ? median(this.rtts) : null;
    // The echo rides on the next frame the server sends, so it includes waiting for one.
    lines.push(`ping echo ${f(rtt)} ms  ICE RTT ${f(c.iceRttMs)} ms`);
    // Connection set-up, ms after navigation start, until the first picture.
    lines.push(`setup ${timeline.render()}`);
    const m = this.mouseLatency;
    if (m && m.samples) lines.push(`mouse latency ${f(m.ms)} ms (emulator, ${m.samples} samples)`);
    const l = this.latency;
    if (l) {
      lines.push(`ping #${l.sequence} ${f(l.rttMs)} ms = network ${f(l.networkMs)} + ipc ${f(l.ipcMs)}`);
      lines.push(`  + emulator ${f(l.emulatorMs)} + wake ${f(l.wakeMs)} + encode ${f(l.encodeMs)} + send ${f(l.sendMs)}`);
    }
    return lines.join('\n');
  }
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[s.length >> 1] : null;
}
