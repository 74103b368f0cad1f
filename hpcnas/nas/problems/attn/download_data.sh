#!/usr/bin/env bash
# Fetch the CANDLE Pilot1 Attn data file (top_21_1fold_001.h5, several GB) into DIR (default .).
# Then: export HPCNAS_ATTN_DATA=DIR/top_21_1fold_001.h5 (reading it needs: pip install tables).
set -euo pipefail
DIR="${1:-.}"
BASE="${HPCNAS_CANDLE_URL:-https://ftp.mcs.anl.gov/pub/candle/public/benchmarks/Pilot1}/attn"
mkdir -p "$DIR"
FILE=top_21_1fold_001.h5
if [ ! -s "$DIR/$FILE" ]; then
    echo "downloading $BASE/$FILE -> $DIR/$FILE"
    curl -fL --retry 3 -o "$DIR/$FILE.part" "$BASE/$FILE"
    mv "$DIR/$FILE.part" "$DIR/$FILE"
fi
echo "export HPCNAS_ATTN_DATA=$(cd "$DIR" && pwd)/$FILE"
