#!/usr/bin/env bash
# Fetch the CANDLE Pilot1 Combo files into DIR (default .):
#   ComboDrugGrowth_Nov2017.csv, descriptors.2D-NSC.5dose.filtered.txt,
#   combined_rnaseq_data_lincs1000_combat
# Then: export HPCNAS_COMBO_DATA=DIR (the Combo problems read them instead of synthetic data).
set -euo pipefail
DIR="${1:-.}"
BASE="${HPCNAS_CANDLE_URL:-https://ftp.mcs.anl.gov/pub/candle/public/benchmarks/Pilot1}/combo"
mkdir -p "$DIR"
for FILE in ComboDrugGrowth_Nov2017.csv descriptors.2D-NSC.5dose.filtered.txt combined_rnaseq_data_lincs1000_combat; do
    if [ ! -s "$DIR/$FILE" ]; then
        echo "downloading $BASE/$FILE -> $DIR/$FILE"
        curl -fL --retry 3 -o "$DIR/$FILE.part" "$BASE/$FILE"
        mv "$DIR/$FILE.part" "$DIR/$FILE"
    fi
done
echo "export HPCNAS_COMBO_DATA=$(cd "$DIR" && pwd)"
