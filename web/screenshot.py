#!/usr/bin/env python3
"""Saves a screenshot of the page mid-training: opens URL (the page with ?autostart=N) in headless
Chromium, waits until the page has trained N steps and paused (window.wgslGanState; "failed"
ends it with an error), then asks
for a screenshot over the Chrome DevTools Protocol. Standard library only (a minimal WebSocket
client), because Chromium's own --screenshot fires at the load event, before any training.

    web/screenshot.py BROWSER URL OUT.png [TIMEOUT_S]
"""
import base64
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

browser, url, out = sys.argv[1:4]
timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 600
port = 9333


def ws_connect(ws_url):
    host_port, path = ws_url[len("ws://"):].split("/", 1)
    host, p = host_port.split(":")
    s = socket.create_connection((host, int(p)))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /{path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += s.recv(1)
    if b" 101 " not in response.split(b"\r\n")[0]:
        raise RuntimeError(f"WebSocket handshake refused: {response[:200]!r}")
    return s


def ws_send(s, obj):
    data = json.dumps(obj).encode()
    mask = os.urandom(4)
    n = len(data)
    header = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n)
                              if n < 65536 else bytes([0x80 | 127]) + struct.pack(">Q", n))
    s.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))


def recv_exactly(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise RuntimeError("the browser closed the connection")
        buf += chunk
    return buf


def ws_recv(s):
    message = b""
    while True:
        b0, b1 = recv_exactly(s, 2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", recv_exactly(s, 2))[0]
        elif n == 127:
            n = struct.unpack(">Q", recv_exactly(s, 8))[0]
        message += recv_exactly(s, n)
        if b0 & 0x80:
            return json.loads(message)


def call(s, ident, method, params=None):
    ws_send(s, {"id": ident, "method": method, "params": params or {}})
    while True:
        reply = ws_recv(s)
        if reply.get("id") == ident:
            return reply.get("result", {})


with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
    chrome = subprocess.Popen([browser, "--headless=new", "--no-sandbox", "--enable-unsafe-webgpu",
                               "--no-first-run", f"--user-data-dir={profile}", "--window-size=1000,1400",
                               f"--remote-debugging-port={port}", "--remote-allow-origins=*", url],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + timeout
        page = None
        while page is None and time.time() < deadline:
            try:
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
                page = next(t for t in targets if t["type"] == "page")
            except Exception:
                time.sleep(0.5)
        s = ws_connect(page["webSocketDebuggerUrl"])
        ident, state = 1, None
        while state not in ("paused", "failed") and time.time() < deadline:
            time.sleep(2)
            ident += 1
            r = call(s, ident, "Runtime.evaluate", {"expression": "window.wgslGanState || ''", "returnByValue": True})
            state = r.get("result", {}).get("value")
        if state != "paused":
            sys.exit("the page reported an error" if state == "failed"
                     else f"the page did not finish its steps within {timeout:.0f} s")
        shot = call(s, ident + 1, "Page.captureScreenshot", {"format": "png"})
        with open(out, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
    finally:
        chrome.kill()
        chrome.wait()
