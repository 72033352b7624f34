// Signaling (WebSocket, JSON) and the WebRTC peer connection. The server makes the offer; we answer.
// The session reconnects by itself with exponential backoff whenever the socket or the peer dies.

import { timeline } from './timeline.js';

// Retries are cheap (one local WebSocket) and a restarted server should be seen within a second or two.
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 1000;
// A peer stuck in "disconnected" this long is torn down and redone.
const DISCONNECTED_GRACE_MS = 3000;

// The DTLS certificate, made once while the page loads instead of by each peer connection as it
// answers (null: the browser makes its own).
const certificate = (RTCPeerConnection.generateCertificate
  ? RTCPeerConnection.generateCertificate({ name: 'ECDSA', namedCurve: 'P-256' })
  : Promise.resolve(null)).catch(() => null);

export class Session extends EventTarget {
  constructor(url, log) {
    super();
    this.url = url;
    this.log = log;
    this.ws = null;
    this.pc = null;
    this.channel = null;
    this.codec = null;
    this.peerId = null;
    this.state = 'idle';
    this.backoff = BACKOFF_MIN_MS;
    this.retryTimer = null;
    this.pendingCandidates = [];
    this.preparedPeer = null; // a promise of the peer connection made before the offer came
    this.disconnectTimer = null;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.teardown();
  }

  setState(state, detail = '') {
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, detail } }));
  }

  open() {
    clearTimeout(this.retryTimer);
    this.teardown();
    this.setState('connecting');
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this.log('error', `signaling URL rejected: ${e.message}`);
      this.retry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      timeline.mark('wsOpen');
      this.log('info', `signaling open ${this.url}`);
      this.send({ type: 'connect' });
      // The browser sets its peer connection up while the server makes the offer.
      this.preparedPeer = certificate.then((cert) => (this.ws === ws ? this.createPeer(cert) : null));
    };
    ws.onmessage = (e) => this.onSignal(e.data);
    ws.onclose = (e) => {
      if (this.ws !== ws) return; // an old socket we already replaced
      this.log('warn', `signaling closed (code ${e.code})`);
      this.retry();
    };
    ws.onerror = () => {}; // onclose follows and handles it
  }

  // Drop everything and come back after the current backoff, which then doubles.
  retry() {
    this.teardown();
    if (this.stopped) return;
    const delay = this.backoff * (0.8 + 0.4 * Math.random());
    this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
    this.setState('waiting', `retry in ${(delay / 1000).toFixed(1)} s`);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  teardown() {
    clearTimeout(this.disconnectTimer);
    const { ws, pc, channel } = this;
    this.ws = this.pc = this.channel = null;
    this.pendingCandidates = [];
    this.preparedPeer = null;
    if (channel) channel.onmessage = channel.onopen = channel.onclose = null;
    if (pc) {
      pc.ontrack = pc.onicecandidate = pc.ondatachannel = pc.onconnectionstatechange = null;
      pc.oniceconnectionstatechange = null;
      pc.close();
    }
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      if (ws.readyState <= WebSocket.OPEN) ws.close();
    }
    if (pc || ws) this.dispatchEvent(new Event('teardown'));
  }

  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  sendInput(buf) {
    const ch = this.channel;
    if (!ch || ch.readyState !== 'open') return false;
    // Input is small and latency-critical; drop it rather than queue behind a congested channel.
    if (ch.bufferedAmount > 256 * 1024) return false;
    ch.send(buf);
    return true;
  }

  async onSignal(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      this.log('warn', 'signaling: message is not JSON');
      return;
    }
    try {
      switch (msg.type) {
        case 'connected':
          this.peerId = msg.peer_id;
          this.codec = msg.codec;
          this.log('info', `peer ${msg.peer_id}, codec ${msg.codec}`);
          this.setState('negotiating');
          this.dispatchEvent(new CustomEvent('codec', { detail: msg.codec }));
          break;
        case 'offer':
          timeline.mark('offer');
          await this.answer(msg.sdp);
          break;
        case 'candidate':
          // One bad candidate is not fatal: others may still connect.
          await this.addCandidate(msg).catch((e) => this.log('warn', `candidate rejected: ${e.message}`));
          break;
        case 'reconnect':
          this.log('info', 'server asks to reconnect');
          this.backoff = BACKOFF_MIN_MS;
          this.open();
          break;
        case 'error':
          this.log('error', `server: ${msg.message}`);
          this.dispatchEvent(new CustomEvent('servererror', { detail: msg.message }));
          break;
        default:
          this.log('warn', `signaling: unknown message type ${msg.type}`);
      }
    } catch (e) {
      this.log('error', `signaling ${msg.type}: ${e.message}`);
      this.retry();
    }
  }

  createPeer(cert) {
    // No STUN/TURN from the client: the server's candidates are enough on a LAN, and the page
    // must not contact outside hosts.
    const config = { iceServers: [], bundlePolicy: 'max-bundle' };
    if (cert) config.certificates = [cert];
    const pc = new RTCPeerConnection(config);
    this.pc = pc;
    pc.onicecandidate = (e) => {
      if (e.candidate && e.candidate.candidate) {
        this.send({ type: 'candidate', candidate: e.candidate.candidate, mid: e.candidate.sdpMid });
      }
    };
    pc.ontrack = (e) => {
      if (e.track.kind === 'video') e.track.addEventListener('unmute', () => timeline.mark('firstPacket'), { once: true });
      this.dispatchEvent(new CustomEvent('track', { detail: e }));
    };
    pc.oniceconnectionstatechange = () => {
      if (this.pc === pc && pc.iceConnectionState === 'connected') timeline.mark('iceConnected');
    };
    pc.ondatachannel = (e) => {
      if (e.channel.label !== 'input') {
        this.log('warn', `ignoring DataChannel ${e.channel.label}`);
        return;
      }
      this.attachChannel(e.channel);
    };
    pc.onconnectionstatechange = () => {
      if (this.pc !== pc) return;
      const s = pc.connectionState;
      this.log('info', `peer connection ${s}`);
      clearTimeout(this.disconnectTimer);
      if (s === 'connected') {
        timeline.mark('peerConnected');
        this.backoff = BACKOFF_MIN_MS;
        this.setState('connected');
      } else if (s === 'failed') {
        this.retry();
      } else if (s === 'disconnected') {
        this.setState('negotiating', 'peer disconnected');
        this.disconnectTimer = setTimeout(() => this.pc === pc && this.retry(), DISCONNECTED_GRACE_MS);
      }
    };
    return pc;
  }

  attachChannel(ch) {
    ch.binaryType = 'arraybuffer';
    this.channel = ch;
    let opened = false; // the open event may or may not follow a channel that arrives open
    ch.onopen = () => {
      timeline.mark('channelOpen');
      if (!opened) this.dispatchEvent(new Event('channelopen'));
      opened = true;
    };
    ch.onmessage = (e) => this.dispatchEvent(new CustomEvent('message', { detail: e.data }));
    ch.onclose = () => {
      if (this.channel === ch) this.channel = null;
    };
    if (ch.readyState === 'open') ch.onopen();
  }

  async answer(sdp) {
    const ws = this.ws;
    let pc = await this.preparedPeer;
    const cert = await certificate;
    if (this.ws !== ws) return; // torn down meanwhile
    this.preparedPeer = null;
    if (!pc || pc !== this.pc || pc.remoteDescription) {
      // A fresh offer replaces any earlier peer.
      if (this.pc) this.pc.close();
      pc = this.createPeer(cert);
    }
    await pc.setRemoteDescription({ type: 'offer', sdp });
    for (const c of this.pendingCandidates.splice(0)) {
      await this.addCandidate(c).catch((e) => this.log('warn', `candidate rejected: ${e.message}`));
    }
    // The browser's own answer, DTLS role included: the server completes DTLS as client or server.
    await pc.setLocalDescription(await pc.createAnswer());
    this.send({ type: 'answer', sdp: pc.localDescription.sdp });
    timeline.mark('answer');
  }

  async addCandidate(msg) {
    const pc = this.pc;
    if (!pc || !pc.remoteDescription) {
      this.pendingCandidates.push(msg);
      return;
    }
    if (!msg.candidate) return; // end of candidates
    const init = { candidate: msg.candidate };
    if (msg.mid != null) init.sdpMid = msg.mid;
    else init.sdpMLineIndex = 0;
    await pc.addIceCandidate(init);
  }
}
