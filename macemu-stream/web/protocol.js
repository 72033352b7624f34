// Wire formats of the v4 browser protocol (docs: browser-protocol.md). Pure functions, no I/O:
// every binary number is little-endian, browser times are performance.now() milliseconds.

export const MSG = { MOUSE_REL: 1, MOUSE_BUTTON: 2, KEY: 3, PING: 4, MOUSE_ABS: 5, MOUSE_MODE: 6 };
export const PNG_HEADER_LEN = 113;
export const H264_META_LEN = 65;

// Relative mouse move: i16 dx, i16 dy, f64 t (deltas are clamped to the i16 range).
export function encodeMouseRel(dx, dy, t) {
  const v = new DataView(new ArrayBuffer(13));
  v.setUint8(0, MSG.MOUSE_REL);
  v.setInt16(1, clamp(Math.round(dx), -32768, 32767), true);
  v.setInt16(3, clamp(Math.round(dy), -32768, 32767), true);
  v.setFloat64(5, t, true);
  return v.buffer;
}

// Mouse button: u8 button (0 left, 1 middle, 2 right), u8 down, f64 t.
export function encodeMouseButton(button, down, t) {
  const v = new DataView(new ArrayBuffer(11));
  v.setUint8(0, MSG.MOUSE_BUTTON);
  v.setUint8(1, button);
  v.setUint8(2, down ? 1 : 0);
  v.setFloat64(3, t, true);
  return v.buffer;
}

// Key: u16 legacy keyCode, u8 down, f64 t. The server maps keyCode to a Mac key code.
export function encodeKey(keyCode, down, t) {
  const v = new DataView(new ArrayBuffer(12));
  v.setUint8(0, MSG.KEY);
  v.setUint16(1, keyCode, true);
  v.setUint8(3, down ? 1 : 0);
  v.setFloat64(4, t, true);
  return v.buffer;
}

// Ping: u32 sequence, f64 t1.
export function encodePing(sequence, t1) {
  const v = new DataView(new ArrayBuffer(13));
  v.setUint8(0, MSG.PING);
  v.setUint32(1, sequence >>> 0, true);
  v.setFloat64(5, t1, true);
  return v.buffer;
}

// Absolute mouse position in frame pixels: u16 x, u16 y, f64 t.
export function encodeMouseAbs(x, y, t) {
  const v = new DataView(new ArrayBuffer(13));
  v.setUint8(0, MSG.MOUSE_ABS);
  v.setUint16(1, clamp(Math.round(x), 0, 65535), true);
  v.setUint16(3, clamp(Math.round(y), 0, 65535), true);
  v.setFloat64(5, t, true);
  return v.buffer;
}

// Mouse mode: u8 0 absolute, 1 relative.
export function encodeMouseMode(relative) {
  return new Uint8Array([MSG.MOUSE_MODE, relative ? 1 : 0]).buffer;
}

// u64 as a JS number (exact up to 2^53, which covers µs since the epoch for millennia).
function u64(v, off) {
  return v.getUint32(off, true) + v.getUint32(off + 4, true) * 0x100000000;
}

// Ping echo: u32 sequence then t1 (browser ms) and t2..t7 (server-clock µs since the Unix epoch).
function readPing(v, off) {
  const p = { sequence: v.getUint32(off, true), t: [] };
  for (let i = 0; i < 7; i++) p.t.push(u64(v, off + 4 + 8 * i));
  return p;
}

// 65-byte per-frame metadata sent on the DataChannel in H.264 mode.
export function parseH264Meta(buf) {
  if (buf.byteLength !== H264_META_LEN) return null;
  const v = new DataView(buf);
  return {
    cursorX: v.getUint16(0, true),
    cursorY: v.getUint16(2, true),
    cursorVisible: v.getUint8(4) !== 0,
    ping: readPing(v, 5),
  };
}

// A PNG-mode frame: 113-byte header, then the PNG of the dirty rectangle.
// Returns null when the message is too short or its rectangle does not fit in the frame.
export function parsePngFrame(buf) {
  if (buf.byteLength < PNG_HEADER_LEN + 8) return null;
  const v = new DataView(buf);
  const f = {
    readyMs: u64(v, 0),
    x: v.getUint32(8, true),
    y: v.getUint32(12, true),
    width: v.getUint32(16, true),
    height: v.getUint32(20, true),
    frameWidth: v.getUint32(24, true),
    frameHeight: v.getUint32(28, true),
    sendMs: u64(v, 32),
    cursorX: v.getUint16(40, true),
    cursorY: v.getUint16(42, true),
    cursorVisible: v.getUint8(44) !== 0,
    ping: readPing(v, 45),
    png: new Uint8Array(buf, PNG_HEADER_LEN),
  };
  const fits = f.frameWidth > 0 && f.frameHeight > 0 && f.frameWidth <= 8192 && f.frameHeight <= 8192 &&
    f.x + f.width <= f.frameWidth && f.y + f.height <= f.frameHeight;
  return fits ? f : null;
}

// Latency breakdown of one ping echo. rttMs uses the browser clock only; the hops t2→t7 use the
// server clock only, so neither needs synchronised clocks. The network share is what is left.
export function pingBreakdown(ping, t1Sent, nowMs) {
  const [, t2, t3, t4, t5, t6, t7] = ping.t;
  const ms = (a, b) => (b >= a && a > 0 ? (b - a) / 1000 : null);
  const rtt = nowMs - t1Sent;
  const server = ms(t2, t7);
  return {
    sequence: ping.sequence,
    rttMs: rtt,
    ipcMs: ms(t2, t3), // server receive → emulator receive
    emulatorMs: ms(t3, t4), // emulator receive → frame ready
    wakeMs: ms(t4, t5), // frame ready → server read
    encodeMs: ms(t5, t6), // server read → encode done
    sendMs: ms(t6, t7), // encode done → server send
    networkMs: server === null ? null : Math.max(0, rtt - server),
  };
}

// Legacy keyCodes where Firefox differs from Chromium; the server's table uses Chromium's values.
const KEYCODE_FIXUPS = { 59: 186, 61: 187, 173: 189, 224: 91 };
// Capture → present from a video frame's RTP timestamp. The server stamps each frame with its capture
// time as 90 kHz ticks of the Unix-epoch clock, so on the same host (or with synchronised clocks) the
// age of a frame is the tick difference to the presentation time. presentEpochMs: epoch milliseconds
// (performance.timeOrigin + a performance.now() time). Returns ms, or null when the clocks evidently
// disagree (a remote viewer: the difference is meaningless then).
export function captureToPresentMs(rtpTimestamp, presentEpochMs) {
  const presentTicks = Math.floor((presentEpochMs * 90) % 4294967296);
  const ms = (((presentTicks - rtpTimestamp) % 4294967296 + 4294967296) % 4294967296) / 90;
  return ms < 10000 ? ms : null;
}

export function normalizeKeyCode(keyCode) {
  return KEYCODE_FIXUPS[keyCode] ?? keyCode;
}

export function clamp(x, lo, hi) {
  return x < lo ? lo : x > hi ? hi : x;
}
