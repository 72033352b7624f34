// Keyboard and mouse capture on the screen element. Absolute mode sends positions in frame pixels;
// pointer lock switches to relative mode. Keys and buttons still held are released when focus leaves,
// so the Mac never sees a stuck modifier.

import {
  encodeKey, encodeMouseAbs, encodeMouseButton, encodeMouseMode, encodeMouseRel, normalizeKeyCode, clamp,
} from './protocol.js';

export class Input {
  // screen: the focusable element; frameSize(): {width, height} of the emulator's frame;
  // send(ArrayBuffer): delivers a message on the input channel.
  constructor(screen, frameSize, send) {
    this.screen = screen;
    this.frameSize = frameSize;
    this.send = send;
    this.keys = new Set(); // keyCodes currently down
    this.buttons = new Set(); // mouse buttons currently down
    this.relative = false;
    this.lastAbs = null;

    screen.addEventListener('keydown', (e) => this.onKey(e, true));
    screen.addEventListener('keyup', (e) => this.onKey(e, false));
    screen.addEventListener('blur', () => this.releaseAll());
    window.addEventListener('blur', () => this.releaseAll());
    document.addEventListener('visibilitychange', () => document.hidden && this.releaseAll());

    screen.addEventListener('mousedown', (e) => {
      screen.focus();
      this.onMove(e);
      this.onButton(e, true);
    });
    window.addEventListener('mouseup', (e) => this.onButton(e, false));
    screen.addEventListener('mousemove', (e) => this.onMove(e));
    screen.addEventListener('contextmenu', (e) => e.preventDefault());
    document.addEventListener('pointerlockchange', () => this.setRelative(document.pointerLockElement === screen));
    // In relative mode movement arrives on the document: pointer lock routes it there.
    document.addEventListener('mousemove', (e) => this.relative && this.onRelative(e));
  }

  onKey(e, down) {
    e.preventDefault(); // keep browser shortcuts (Tab, Backspace, Ctrl+W...) away from the page
    e.stopPropagation();
    const code = normalizeKeyCode(e.keyCode);
    if (!code) return;
    if (down) {
      // OS key repeat is not forwarded: the Mac generates its own repeat from the held key.
      if (e.repeat || this.keys.has(code)) return;
      this.keys.add(code);
    } else {
      if (!this.keys.delete(code)) return;
    }
    this.send(encodeKey(code, down, performance.now()));
  }

  onButton(e, down) {
    const b = e.button;
    if (b < 0 || b > 2) return;
    if (down) {
      e.preventDefault();
      if (this.buttons.has(b)) return;
      this.buttons.add(b);
    } else if (!this.buttons.delete(b)) {
      return; // a release that began outside the screen
    }
    this.send(encodeMouseButton(b, down, performance.now()));
  }

  // CSS position → frame pixel. The picture is scaled to fit the element and centred in it (in
  // fullscreen the element is the whole screen, so there are bars on two sides).
  framePos(e) {
    const r = this.screen.getBoundingClientRect();
    const { width, height } = this.frameSize();
    if (!width || !height || r.width <= 0 || r.height <= 0) return null;
    const scale = Math.min(r.width / width, r.height / height);
    const left = r.left + (r.width - width * scale) / 2;
    const top = r.top + (r.height - height * scale) / 2;
    const x = clamp(Math.floor((e.clientX - left) / scale), 0, width - 1);
    const y = clamp(Math.floor((e.clientY - top) / scale), 0, height - 1);
    return { x, y };
  }

  onMove(e) {
    if (this.relative) return;
    const p = this.framePos(e);
    if (!p || (this.lastAbs && this.lastAbs.x === p.x && this.lastAbs.y === p.y)) return;
    this.lastAbs = p;
    this.send(encodeMouseAbs(p.x, p.y, performance.now()));
  }

  onRelative(e) {
    let dx = e.movementX;
    let dy = e.movementY;
    if (!dx && !dy) return;
    // Split huge jumps so each part fits an i16.
    while (dx || dy) {
      const sx = clamp(dx, -32767, 32767);
      const sy = clamp(dy, -32767, 32767);
      this.send(encodeMouseRel(sx, sy, performance.now()));
      dx -= sx;
      dy -= sy;
    }
  }

  setRelative(relative) {
    if (this.relative === relative) return;
    this.relative = relative;
    this.lastAbs = null;
    this.send(encodeMouseMode(relative));
    this.screen.classList.toggle('relative', relative);
  }

  // Called when the input channel (re)opens: the server must learn the current mode.
  resync() {
    this.send(encodeMouseMode(this.relative));
  }

  lockPointer() {
    this.screen.focus();
    const p = this.screen.requestPointerLock();
    if (p && p.catch) p.catch(() => {}); // refused without a user gesture; absolute mode stays
  }

  releaseAll() {
    const t = performance.now();
    for (const code of this.keys) this.send(encodeKey(code, false, t));
    for (const b of this.buttons) this.send(encodeMouseButton(b, false, t));
    this.keys.clear();
    this.buttons.clear();
  }
}
