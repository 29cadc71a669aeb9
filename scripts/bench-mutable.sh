#!/usr/bin/env bash
# Mutable files side by side with Tahoe-LAFS 1.20 (see bench-vs-tahoe.sh).
exec "$(dirname "$0")/bench-vs-tahoe.sh" --mutable "$@"
