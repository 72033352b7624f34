#!/usr/bin/env python3
"""Load figures for a running `macemu-cli serve` (bounded: a few seconds each).

  scripts/measure-limits.py HTTP_PORT SIGNALING_PORT SERVER_PID

1. slowloris: 500 idle TCP connections to the HTTP port, then how long GET /api/status takes;
2. 200 signaling WebSockets that send `connect` and never answer: the server's RSS and open
   descriptors before, while they are open, and after the negotiation timeout closed them.
"""
import base64, json, os, socket, struct, sys, time

http_port, sig_port, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])


def rss_fds():
    with open(f'/proc/{pid}/status') as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith('VmRSS'))
    return rss, len(os.listdir(f'/proc/{pid}/fd'))


def status_time():
    t0 = time.monotonic()
    s = socket.create_connection(('127.0.0.1', http_port), timeout=5)
    s.sendall(f'GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:{http_port}\r\nConnection: close\r\n\r\n'.encode())
    data = b''
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    return time.monotonic() - t0, data.split(b' ', 2)[1].decode()


print('before: rss %d KiB, %d fds' % rss_fds())
idle = [socket.create_connection(('127.0.0.1', http_port), timeout=5) for _ in range(500)]
time.sleep(0.5)
t, code = status_time()
print(f'slowloris: 500 idle connections, GET /api/status -> {code} in {t * 1000:.1f} ms; '
      'rss %d KiB, %d fds' % rss_fds())
for s in idle:
    s.close()


def ws_connect():
    s = socket.create_connection(('127.0.0.1', sig_port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f'GET / HTTP/1.1\r\nHost: 127.0.0.1:{sig_port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
              f'Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n'.encode())
    head = b''
    while b'\r\n\r\n' not in head:
        b = s.recv(1)
        if not b:
            return s, 'closed'
        head += b
    line = head.split(b'\r\n')[0].decode()
    if ' 101 ' not in line:
        return s, line
    payload = json.dumps({'type': 'connect'}).encode()
    mask = os.urandom(4)
    s.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    return s, 'open'


t0 = time.monotonic()
socks, outcomes = [], {}
for _ in range(200):
    s, o = ws_connect()
    socks.append(s)
    outcomes[o] = outcomes.get(o, 0) + 1
time.sleep(2)
print(f'200 never-answering sessions: {outcomes}; rss %d KiB, %d fds' % rss_fds())
t, code = status_time()
print(f'  GET /api/status meanwhile -> {code} in {t * 1000:.1f} ms')
wait = float(os.environ.get('WAIT_AFTER', '17'))
time.sleep(wait)
closed = 0
for s in socks:
    s.settimeout(0.01)
    try:
        while True:
            b = s.recv(65536)
            if not b:
                closed += 1
                break
    except (socket.timeout, BlockingIOError):
        pass
    except OSError:
        closed += 1
print(f'after {wait:.0f} s more: {closed}/200 closed by the server; rss %d KiB, %d fds' % rss_fds())
for s in socks:
    s.close()
time.sleep(1)
print('at the end: rss %d KiB, %d fds' % rss_fds())
