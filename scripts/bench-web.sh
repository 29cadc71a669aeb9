#!/usr/bin/env bash
# The web gateways side by side with Tahoe-LAFS 1.20 (see bench-vs-tahoe.sh):
# time to first byte, a 10,000-entry directory, 100 uploads at once.
exec "$(dirname "$0")/bench-vs-tahoe.sh" --web "$@"
