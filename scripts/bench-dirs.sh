#!/usr/bin/env bash
# Directories side by side with Tahoe-LAFS 1.20 (see bench-vs-tahoe.sh).
exec "$(dirname "$0")/bench-vs-tahoe.sh" --dirs "$@"
