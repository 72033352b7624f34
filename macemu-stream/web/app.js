// macemu web client: wires the signaling session, the picture, input, stats and the HTTP API together.
// Query parameters: token=…   ws=ws://host:port/ (signaling URL)   signaling_port=N   stats=0

import { parseH264Meta, parsePngFrame } from './protocol.js';
import { Session } from './session.js';
import { Display } from './display.js';
import { Input } from './input.js';
import { Stats } from './stats.js';
import { Drives } from './drives.js';
import { timeline } from './timeline.js';

timeline.mark('script');

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const token = params.get('token') || '';
const STATUS_POLL_MS = 1000;
const DEFAULT_SIGNALING_PORT = 8090;

// ---- logging: the page's log panel, the console, and POST /api/log (rate-limited) ----

let logBudget = 20;
setInterval(() => { logBudget = 20; }, 1000);

function log(level, message) {
  (level === 'error' ? console.error : level === 'warn' ? console.warn : console.log)(`[macemu] ${message}`);
  const li = document.createElement('li');
  li.className = level;
  li.textContent = `${new Date().toISOString().slice(11, 19)} ${message}`;
  const list = $('log');
  list.append(li);
  while (list.children.length > 200) list.firstChild.remove();
  list.scrollTop = list.scrollHeight;
  if (logBudget-- > 0) {
    api('/api/log', { level, message, data: navigator.userAgent }).catch(() => {});
  }
}
window.addEventListener('error', (e) => log('error', `uncaught: ${e.message} (${e.filename}:${e.lineno})`));
window.addEventListener('unhandledrejection', (e) => log('error', `unhandled rejection: ${e.reason}`));

// ---- HTTP API ----

async function api(path, body) {
  const url = new URL(path, location.href);
  if (token) url.searchParams.set('token', token);
  const opts = { headers: {}, cache: 'no-store' };
  if (token) opts.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    opts.method = 'POST';
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(url, opts);
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!r.ok) throw new Error((json && (json.error || json.message)) || `${r.status} ${r.statusText}`);
  return json;
}

// GET /api/config, asked once as soon as the page runs: the signaling URL and the mouse mode.
const config = api('/api/config');
config.catch(() => {}); // each user handles a failure

// Signaling URL: ?ws=… wins, then ?signaling_port=…, then /api/config, then port 8090 on this host.
async function signalingUrl() {
  let url = params.get('ws');
  if (!url) {
    let port = params.get('signaling_port');
    if (!port) {
      try {
        const cfg = await config;
        if (cfg && cfg.signaling_url) url = cfg.signaling_url;
        port = cfg && cfg.signaling_port;
      } catch (e) {
        log('warn', `GET /api/config: ${e.message}`);
      }
    }
    if (!url) {
      const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
      url = `${scheme}//${location.hostname || '127.0.0.1'}:${port || DEFAULT_SIGNALING_PORT}/`;
    }
  }
  const u = new URL(url, location.href);
  // The token only goes to this page's own host: a ?ws= link naming another host gets none.
  if (token && u.hostname === location.hostname) {
    u.searchParams.set('token', token);
  } else if (token) {
    log('warn', `signaling host ${u.host} is not this page's host: connecting without the token`);
  }
  return u.toString();
}

// Resolved while the rest of the page is set up; the session starts with it.
const signaling = signalingUrl();

// ---- the picture, input and stats ----

const screen = $('screen');
const display = new Display(screen, $('video'), $('canvas'), (w, h) => log('info', `frame ${w}x${h}`));
const stats = new Stats();
let session = null;
const send = (buf) => (session ? session.sendInput(buf) : false);
const input = new Input(screen, () => ({ width: display.width, height: display.height }), send);

// Mouse mode, remembered by the server (POST /api/config): in relative mode a click on the screen
// locks the pointer (browsers allow that only on a user gesture).
let mouseMode = 'absolute';
screen.addEventListener('click', () => {
  screen.focus();
  if (display.video.paused && display.video.srcObject) display.video.play().catch(() => {});
  if (mouseMode === 'relative' && document.pointerLockElement !== screen) input.lockPointer();
});
function applyMouseMode(mode) {
  mouseMode = mode === 'relative' ? 'relative' : 'absolute';
  $('mousemode').value = mouseMode;
  if (mouseMode === 'absolute' && document.pointerLockElement === screen) document.exitPointerLock();
}
$('mousemode').onchange = async () => {
  applyMouseMode($('mousemode').value);
  if (mouseMode === 'relative') input.lockPointer();
  try {
    await api('/api/config', { mousemode: mouseMode });
  } catch (e) {
    log('warn', `mouse mode not saved: ${e.message}`);
  }
};
config.then((c) => c && applyMouseMode(c.mousemode)).catch(() => {});

$('fullscreen').onclick = () => {
  const p = screen.requestFullscreen ? screen.requestFullscreen() : null;
  if (p && p.catch) p.catch((e) => log('warn', `fullscreen: ${e.message}`));
  screen.focus();
};

// Audio: try to play with sound; if the autoplay policy refuses, play muted and ask for a click.
const audio = $('audio');
function playAudio(stream) {
  audio.srcObject = stream;
  audio.muted = false;
  audio.play().then(updateUnmute).catch(() => {
    audio.muted = true;
    audio.play().catch(() => {});
    updateUnmute();
  });
}
function updateUnmute() {
  const b = $('unmute');
  b.textContent = audio.muted ? 'Unmute' : 'Mute';
  b.classList.toggle('attention', audio.muted);
}
$('unmute').onclick = () => {
  audio.muted = !audio.muted;
  audio.play().catch((e) => log('warn', `audio: ${e.message}`));
  updateUnmute();
};
updateUnmute();

// ---- connection status: the stream's state combined with /api/status ----

const status = {
  session: 'connecting', // Session state
  sessionDetail: '',
  emulator: 'unknown', // running | paused | stopped | disconnected | unknown
  serverReachable: true,
  serverError: '',
  info: null, // the last /api/status answer
};

// The server reports the emulator in a few shapes; reduce them to one word.
function emulatorState(st) {
  if (!st) return 'unknown';
  if ('emulator' in st && st.emulator == null) return 'disconnected';
  const e = typeof st.emulator === 'object' && st.emulator ? st.emulator : st;
  const connected = e.connected ?? st.emulator_connected;
  let state = e.state ?? st.emulator_state ?? (st.video && st.video.state);
  if (typeof state === 'number') state = ['stopped', 'running', 'paused'][state] || 'unknown';
  if (connected === false) return 'disconnected';
  if (typeof state === 'string' && state) return state.toLowerCase();
  if (connected === true || e.running === true || st.emulator_running === true) return 'running';
  if (e.running === false || st.emulator_running === false) return 'stopped';
  return 'unknown';
}

function renderStatus() {
  const el = $('status');
  let state;
  let text;
  if (!status.serverReachable && status.session !== 'connected') {
    state = 'server-unreachable';
    text = 'Server not reachable — retrying';
  } else if (status.emulator === 'stopped' || status.emulator === 'disconnected') {
    state = 'emulator-stopped';
    text = status.emulator === 'stopped' ? 'Emulator stopped' : 'Not connected to an emulator';
  } else if (status.emulator === 'paused') {
    state = 'paused';
    text = 'Emulator paused';
  } else if (status.session === 'connected') {
    state = 'streaming';
    const since = performance.now() - display.lastPicture;
    text = since > 5000 && display.lastPicture ? 'Connected (picture unchanged)' : 'Streaming';
  } else if (status.serverError) {
    state = 'error';
    text = status.serverError;
  } else {
    state = 'connecting';
    text = status.session === 'waiting' ? `Reconnecting (${status.sessionDetail})` : 'Connecting…';
  }
  el.dataset.state = state;
  $('status-text').textContent = text;
  document.title = `macemu — ${text}`;
  const msg = $('overlay-msg');
  const blocking = state === 'emulator-stopped' || state === 'server-unreachable' || state === 'error';
  msg.textContent = blocking ? text : '';
  msg.classList.toggle('shown', blocking);
}

async function pollStatus() {
  try {
    const st = await api('/api/status');
    status.serverReachable = true;
    status.info = st;
    status.emulator = emulatorState(st);
    stats.mouseLatency = typeof st.mouse_latency_ms === 'number'
      ? { ms: st.mouse_latency_ms, samples: st.mouse_latency_samples || 0 } : null;
    renderEmuInfo(st);
  } catch {
    status.serverReachable = false;
    status.emulator = 'unknown';
  }
  renderStatus();
}

function renderEmuInfo(st) {
  const e = (st && typeof st.emulator === 'object' && st.emulator) || {};
  const rows = [
    ['state', status.emulator],
    ['pid', e.pid ?? st.emulator_pid ?? st.pid],
    ['codec', st.codec ?? session?.codec],
    ['peers', st.peers ?? st.peer_count],
    ['fps', st.fps],
    ['kbit/s', st.bitrate_kbps],
  ].filter(([, v]) => v !== undefined && v !== null && v !== '');
  $('emu-info').replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = typeof v === 'object' ? JSON.stringify(v) : String(v);
    return [dt, dd];
  }));
}

// ---- controls ----

for (const b of document.querySelectorAll('[data-emu]')) {
  b.onclick = async () => {
    const what = b.dataset.emu;
    try {
      const r = await api(`/api/emulator/${what}`, {});
      log('info', `${what}: ${(r && r.message) || 'ok'}`);
    } catch (e) {
      log('error', `${what}: ${e.message}`);
    }
    pollStatus();
  };
}

$('codec').onchange = async (e) => {
  const codec = e.target.value;
  try {
    await api('/api/codec', { codec });
    log('info', `codec → ${codec}`); // the server then sends "reconnect"
  } catch (err) {
    log('error', `codec ${codec}: ${err.message}`);
    if (session && session.codec) e.target.value = session.codec;
  }
};

$('scale').onchange = (e) => {
  screen.classList.remove('scale-1', 'scale-2');
  if (e.target.value !== 'fit') screen.classList.add(`scale-${e.target.value}`);
};

$('stats-toggle').onclick = (e) => {
  const shown = $('stats').classList.toggle('hidden') === false;
  e.target.setAttribute('aria-pressed', String(shown));
};
if (params.get('stats') === '0') $('stats-toggle').click();

// ---- ROM and disk choice: edits the BasiliskII-style prefs text ("rom PATH", "disk PATH" lines) ----

let storage = { roms: [], disks: [] };

function joinPath(dir, name) {
  return dir ? `${dir.replace(/\/+$/, '')}/${name}` : name;
}

function prefLines(text, key) {
  return text.split('\n').filter((l) => l.trim().split(/\s+/)[0] === key).map((l) => l.trim().slice(key.length).trim());
}

function setPrefLines(text, key, values) {
  const keep = text.split('\n').filter((l) => l.trim().split(/\s+/)[0] !== key && l !== '');
  return [...keep, ...values.map((v) => `${key} ${v}`)].join('\n') + '\n';
}

function renderStorage() {
  const text = $('prefs').value;
  const currentRom = prefLines(text, 'rom')[0] || '';
  const romSel = $('rom');
  const builtin = new Option('Built-in demo ROM', '');
  const roms = (storage.roms || []).map((r) => {
    const path = joinPath(r.dir ?? storage.romsPath, r.name);
    const what = r.model || (r.checksum && r.checksum.toUpperCase());
    return new Option(what ? `${r.name} (${what})` : r.name, path, false, path === currentRom);
  });
  romSel.replaceChildren(builtin, ...roms);
  romSel.value = currentRom;
  const mounted = new Set(prefLines(text, 'disk'));
  const boxes = (storage.disks || []).map((d) => {
    const path = joinPath(d.dir ?? storage.imagesPath, d.name);
    const label = document.createElement('label');
    const cb = document.createElement('input');
    cb.type = 'checkbox';
    cb.value = path;
    cb.checked = mounted.has(path);
    cb.onchange = syncPrefsFromChoices;
    label.append(cb, ` ${d.name}`);
    return label;
  });
  const legend = document.createElement('legend');
  legend.textContent = boxes.length ? 'Disks' : 'Disks (none found)';
  $('disks').replaceChildren(legend, ...boxes);
}

function syncPrefsFromChoices() {
  let text = $('prefs').value;
  const rom = $('rom').value;
  text = setPrefLines(text, 'rom', rom ? [rom] : []);
  const disks = [...$('disks').querySelectorAll('input:checked')].map((cb) => cb.value);
  text = setPrefLines(text, 'disk', disks);
  $('prefs').value = text;
}
$('rom').onchange = syncPrefsFromChoices;

// Without a prefs file on the server the choices are shown but cannot be saved.
async function loadStorage() {
  const [st, prefs] = await Promise.allSettled([api('/api/storage'), api('/api/prefs')]);
  if (st.status === 'fulfilled' && st.value) storage = st.value;
  else log('warn', `storage: ${st.reason && st.reason.message}`);
  const canSave = prefs.status === 'fulfilled';
  $('prefs').value = canSave ? (prefs.value && prefs.value.content) || '' : '';
  for (const id of ['prefs', 'prefs-save', 'prefs-save-restart']) $(id).disabled = !canSave;
  $('prefs-msg').textContent = canSave ? '' : `Preferences unavailable: ${prefs.reason.message}`;
  renderStorage();
}

async function savePrefs(restart) {
  try {
    await api('/api/prefs', { content: $('prefs').value });
    $('prefs-msg').textContent = 'Saved.';
    if (restart) {
      await api('/api/emulator/restart', {});
      $('prefs-msg').textContent = 'Saved; emulator restarting.';
    }
  } catch (e) {
    $('prefs-msg').textContent = `Not saved: ${e.message}`;
    log('error', `prefs: ${e.message}`);
  }
}
$('prefs-save').onclick = () => savePrefs(false);
$('prefs-save-restart').onclick = () => savePrefs(true);
$('prefs').addEventListener('change', renderStorage);

// ---- drives: state, insert, eject, and uploads dropped on the page ----

const drives = new Drives({
  list: $('drives'),
  drop: $('drop'),
  picker: $('disk-file'),
  message: $('drives-msg'),
  api,
  authorize: (xhr) => { if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`); },
  log,
  onUploaded: loadStorage,
  diskNames: () => (storage.disks || []).map((d) => d.name),
});

// ---- the session ----

function onChannelMessage(data) {
  if (typeof data === 'string') return; // JSON commands are client → server only
  stats.channelBytes += data.byteLength;
  if (display.mode === 'image') {
    const f = parsePngFrame(data);
    if (!f) {
      log('warn', `bad PNG frame message (${data.byteLength} bytes)`);
      return;
    }
    stats.onPingEcho(f.ping);
    display.drawRect(f);
  } else {
    const m = parseH264Meta(data);
    if (m) stats.onPingEcho(m.ping);
  }
}

async function start() {
  const url = await signaling;
  session = new Session(url, log);
  session.addEventListener('state', (e) => {
    status.session = e.detail.state;
    status.sessionDetail = e.detail.detail;
    if (e.detail.state === 'connected') status.serverError = '';
    renderStatus();
  });
  session.addEventListener('codec', (e) => {
    display.setCodec(e.detail);
    $('codec').value = e.detail;
    stats.reset();
  });
  session.addEventListener('servererror', (e) => {
    status.serverError = e.detail;
    renderStatus();
  });
  session.addEventListener('track', (e) => {
    const ev = e.detail;
    const stream = ev.streams[0] || new MediaStream([ev.track]);
    if (ev.track.kind === 'video') {
      // Ask for the smallest playout delay: a desktop's frames come irregularly (nothing is sent while
      // the screen is still), which otherwise grows the jitter buffer to hundreds of ms. The server
      // asks for the same on every packet (RTP playout-delay 0). `?playout-delay=auto` keeps the
      // browser's adaptive buffer, for lossy networks (with `serve --playout-delay auto`).
      if ('jitterBufferTarget' in ev.receiver && params.get('playout-delay') !== 'auto') {
        ev.receiver.jitterBufferTarget = 0;
      }
      display.showStream(stream);
    }
    else if (ev.track.kind === 'audio') playAudio(new MediaStream([ev.track]));
  });
  session.addEventListener('channelopen', () => {
    input.resync();
    stats.startPings(send);
  });
  session.addEventListener('message', (e) => onChannelMessage(e.detail));
  session.addEventListener('teardown', () => {
    stats.stopPings();
    input.releaseAll();
    display.clearStream();
  });
  session.start();

  setInterval(async () => {
    try {
      await stats.sample(session.pc, display);
    } catch { /* the peer closed between two samples */ }
    $('stats').textContent = stats.render(display);
    renderStatus();
  }, 1000);
  setInterval(pollStatus, STATUS_POLL_MS);
  pollStatus();
  loadStorage();
  drives.start();
}

// For tests and the console: the live objects.
window.macemu = { get session() { return session; }, display, input, stats, status, drives, timeline };

start();
