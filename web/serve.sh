#!/usr/bin/env bash
# Serves the page on http://127.0.0.1:8000/ (build it first with web/build.sh).
exec python3 "$(dirname "$0")/serve.py" "$@"
