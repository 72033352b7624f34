// Connection set-up on the page's own clock: the first time each stage was reached since the page
// loaded, in milliseconds after navigation start (performance.now()). Read by the stats overlay and by
// the latency bench (window.macemu.timeline); each mark is also a performance.mark('macemu:NAME').

// The stages in the order a load goes through them.
export const STAGES = [
  ['script', 'script start'],
  ['wsOpen', 'WebSocket open'],
  ['offer', 'offer received'],
  ['answer', 'answer sent'],
  ['iceConnected', 'ICE connected'],
  ['peerConnected', 'DTLS / peer connected'],
  ['firstPacket', 'first RTP packet'],
  ['firstDecoded', 'first frame decoded'],
  ['firstPresented', 'first frame presented'],
  ['channelOpen', 'DataChannel open'], // not on the first picture's path
];

export class Timeline {
  constructor() {
    this.marks = {};
  }

  // Records `name` at `t` (default now) unless it was reached before.
  mark(name, t = performance.now()) {
    if (name in this.marks) return;
    this.marks[name] = t;
    try {
      performance.mark(`macemu:${name}`, { startTime: t });
    } catch { /* an old browser without mark options */ }
  }

  // The first presented video frame (requestVideoFrameCallback metadata): its last packet's arrival,
  // the end of its decoding and its presentation.
  firstFrame(meta) {
    if ('firstPresented' in this.marks) return;
    // The track's unmute event may run later than the frame's first packet arrived.
    if (meta.receiveTime && !(this.marks.firstPacket <= meta.receiveTime)) {
      delete this.marks.firstPacket;
      this.mark('firstPacket', meta.receiveTime);
    }
    const decoded = meta.receiveTime && meta.processingDuration !== undefined
      ? meta.receiveTime + 1000 * meta.processingDuration : meta.presentationTime;
    this.mark('firstDecoded', decoded);
    this.mark('firstPresented', meta.presentationTime);
  }

  // "stage 123 ms" for the stages reached so far.
  render() {
    return STAGES.filter(([k]) => k in this.marks)
      .map(([k]) => `${k} ${Math.round(this.marks[k])}`)
      .join('  ');
  }
}

export const timeline = new Timeline();
