#!/usr/bin/env python3
"""hostile.py: the attacking clients of tests/notify-hostile.bats.

  hostile.py raw HOST PORT OUT        send stdin's bytes, write the answer
                                      to OUT (until closed, at most 10 s)
  hostile.py trickle HOST PORT OUT    send a request a byte every 0.2 s;
                                      write what comes back to OUT
  hostile.py hold HOST PORT N READY   open N connections, send nothing,
                                      touch READY, hold them until killed
  hostile.py pingflood HOST PORT PATH OUT
                                      WebSocket handshake, then pings and
                                      never a read; OUT gets how it ended
"""
import os
import socket
import sys
import time


def connect(host, port, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        # before connect, so that the window stays small
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect((host, int(port)))
    return s


def read_all(s, out, limit=10.0):
    s.settimeout(limit)
    end = time.monotonic() + limit
    with open(out, 'wb') as f:
        while time.monotonic() < end:
            try:
                d = s.recv(65536)
            except (socket.timeout, OSError):
                break
            if not d:
                break
            f.write(d)
            f.flush()


def raw(host, port, out):
    s = connect(host, port)
    s.sendall(sys.stdin.buffer.read())
    read_all(s, out)


def trickle(host, port, out):
    s = connect(host, port)
    req = b'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ' + b'a' * 4000
    s.settimeout(0.2)
    with open(out, 'wb') as f:
        for b in req:
            try:
                s.send(bytes([b]))
            except OSError:
                break
            try:
                d = s.recv(4096)
                if not d:
                    break
                f.write(d)
                f.flush()
            except socket.timeout:
                pass
            except OSError:
                break


def hold(host, port, n, ready):
    socks = [connect(host, port) for _ in range(int(n))]
    open(ready, 'w').close()
    while True:
        time.sleep(1)
    del socks


def ping_flood(host, port, path, out):
    s = connect(host, port, rcvbuf=4096)
    s.sendall(('GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n'
               'Connection: Upgrade\r\n'
               'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
               'Sec-WebSocket-Version: 13\r\n\r\n' % path).encode())
    # a masked ping of 125 bytes: 131 in, a 127-byte pong out
    mask = b'\x01\x02\x03\x04'
    payload = bytes(c ^ mask[i % 4] for i, c in enumerate(b'p' * 125))
    ping = b'\x89' + bytes([0x80 | 125]) + mask + payload
    batch = ping * 64
    sent = 0
    how = 'limit'
    s.settimeout(5)
    try:
        while sent < 64 * 1024 * 1024:
            s.sendall(batch)
            sent += len(batch)
    except socket.timeout:
        how = 'blocked'
    except OSError as e:
        how = 'error %s' % e.__class__.__name__
    with open(out, 'w') as f:
        f.write('%s %d\n' % (how, sent))


def main():
    cmd = sys.argv[1]
    if cmd == 'raw':
        raw(*sys.argv[2:5])
    elif cmd == 'trickle':
        trickle(*sys.argv[2:5])
    elif cmd == 'hold':
        hold(*sys.argv[2:6])
    elif cmd == 'pingflood':
        ping_flood(*sys.argv[2:6])
    else:
        sys.exit('hostile.py: unknown command %s' % cmd)


if __name__ == '__main__':
    try:
        main()
    except KeyboardInterrupt:
        os._exit(0)
