#!/usr/bin/env bash
# Run every atheris fuzz target for a bounded time (default 60 s each),
# growing fuzz/corpus/<target>/ with the new coverage atheris finds.
#   fuzz/run-all.sh [seconds-per-target]
# Findings are written as crash-*/timeout-* files in the current directory.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-60}
export PYTHONPATH="$(pwd)/src:$(pwd)"
python3 -c "import atheris" 2>/dev/null || { echo "pip install atheris"; exit 1; }
for target in packet_header transport_params tls_messages frames h3_frames; do
    echo "== $target ($SECONDS_PER_TARGET s)"
    python3 fuzz/fuzz.py "$target" -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 -timeout=10 \
        -rss_limit_mb=2048 "fuzz/corpus/$target" 2>&1 | grep -E "^#.*DONE|^Done|ERROR|Traceback|crash-|timeout-" || true
done
