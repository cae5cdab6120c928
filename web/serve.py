#!/usr/bin/env python3
"""Serves web/ on 127.0.0.1 (default port 8000). With --results DIR it also accepts the test
mode's POST /result (the page's checkpoint), saved as DIR/checkpoint.safetensors."""
import argparse
import functools
import http.server
import os

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--port", type=int, default=8000)
parser.add_argument("--results", help="folder for the test mode's checkpoint")
args = parser.parse_args()
root = os.path.dirname(os.path.abspath(__file__))


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_POST(self):
        if self.path != "/result" or not args.results:
            self.send_error(404)
            return
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(os.path.join(args.results, "checkpoint.safetensors"), "wb") as f:
            f.write(body)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), functools.partial(Handler, directory=root))
print(f"serving {root} on http://127.0.0.1:{args.port}/", flush=True)
server.serve_forever()
