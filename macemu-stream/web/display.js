// The picture: a <video> for WebRTC codecs, a <canvas> for PNG/WebP dirty rectangles.

import { captureToPresentMs } from './protocol.js';
import { timeline } from './timeline.js';

// Messages on an unordered channel can overtake each other; a rectangle older than one already drawn
// over the same area is skipped (the server resends regions, so nothing stays stale for long).
const RECENT_RECTS = 32;

export class Display {
  constructor(screen, video, canvas, onFrameSize) {
    this.screen = screen;
    this.video = video;
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.onFrameSize = onFrameSize;
    this.mode = 'video';
    this.width = 0;
    this.height = 0;
    this.recent = []; // {x, y, w, h, t} of rectangles drawn lately
    this.drawChain = Promise.resolve(); // draws happen in arrival order despite async decoding
    this.imageFrames = 0; // rectangles drawn (PNG mode)
    this.staleSkipped = 0;
    this.videoFrames = 0; // frames presented (video mode)
    this.presentDelays = []; // receive → present, ms, from requestVideoFrameCallback
    this.captureDelays = []; // emulator frame ready → present, ms (same-host clocks only)
    this.lastPicture = 0; // performance.now() of the last new picture

    video.addEventListener('resize', () => this.setSize(video.videoWidth, video.videoHeight));
    if ('requestVideoFrameCallback' in HTMLVideoElement.prototype) {
      const onVideoFrame = (now, meta) => {
        if (!this.videoFrames) timeline.firstFrame(meta);
        this.videoFrames++;
        this.lastPicture = performance.now();
        if (meta.receiveTime) this.presentDelays.push(meta.expectedDisplayTime - meta.receiveTime);
        if (this.presentDelays.length > 120) this.presentDelays.shift();
        if (meta.rtpTimestamp !== undefined) {
          const d = captureToPresentMs(meta.rtpTimestamp, performance.timeOrigin + meta.expectedDisplayTime);
          if (d !== null) this.captureDelays.push(d);
          if (this.captureDelays.length > 120) this.captureDelays.shift();
        }
        video.requestVideoFrameCallback(onVideoFrame);
      };
      video.requestVideoFrameCallback(onVideoFrame);
    }
  }

  // codec: the name the server announced ('h264', 'png', ...).
  setCodec(codec) {
    this.mode = codec === 'png' || codec === 'webp' ? 'image' : 'video';
    this.screen.dataset.codec = codec;
    this.recent = [];
    this.width = this.height = 0; // the new stream announces its size again
  }

  setSize(w, h) {
    if (!w || !h || (w === this.width && h === this.height)) return;
    this.width = w;
    this.height = h;
    this.screen.style.setProperty('--fw', w);
    this.screen.style.setProperty('--fh', h);
    if (this.mode === 'image') {
      this.canvas.width = w; // also clears it: the next full frame repaints
      this.canvas.height = h;
      this.recent = [];
    }
    this.onFrameSize(w, h);
  }

  showStream(stream) {
    this.video.srcObject = stream;
    this.video.play().catch(() => {}); // muted video may always autoplay; a failure retries on click
  }

  clearStream() {
    this.video.srcObject = null;
  }

  // One parsed PNG-mode message (see protocol.parsePngFrame).
  drawRect(f) {
    this.drawChain = this.drawChain.then(() => this.decodeAndDraw(f)).catch(() => {});
    return this.drawChain;
  }

  async decodeAndDraw(f) {
    this.setSize(f.frameWidth, f.frameHeight);
    if (f.width === 0 || f.height === 0) return; // a heartbeat carrying only metadata
    const bitmap = await createImageBitmap(new Blob([f.png], { type: 'image/png' }));
    try {
      if (this.isStale(f)) {
        this.staleSkipped++;
        return;
      }
      this.ctx.drawImage(bitmap, f.x, f.y);
      if (!this.imageFrames) {
        timeline.mark('firstDecoded');
        timeline.mark('firstPresented');
      }
      this.recent.push({ x: f.x, y: f.y, w: f.width, h: f.height, t: f.readyMs });
      if (this.recent.length > RECENT_RECTS) this.recent.shift();
      this.imageFrames++;
      this.lastPicture = performance.now();
    } finally {
      bitmap.close();
    }
  }

  isStale(f) {
    return this.recent.some((r) => r.t > f.readyMs &&
      r.x < f.x + f.width && f.x < r.x + r.w && r.y < f.y + f.height && f.y < r.y + r.h);
  }

  // The current picture as RGBA pixels at frame resolution (used by tests and screenshots).
  snapshot() {
    const w = this.width;
    const h = this.height;
    if (!w || !h) return null;
    if (this.mode === 'image') return this.ctx.getImageData(0, 0, w, h);
    const c = new OffscreenCanvas(w, h);
    const g = c.getContext('2d');
    g.drawImage(this.video, 0, 0, w, h);
    return g.getImageData(0, 0, w, h);
  }
}
