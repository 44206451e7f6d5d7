#!/usr/bin/env bash
# The small LM's table on a lent GPU, in time-limited chunks (issue 30). Run from the
# repository root; after every chunk the table and its progress file are copied to OUT_DIR,
# so a lease cut short still brings back every curve recorded. The next call, from a checkout
# holding the committed partial table, goes on where it stopped. `suite tabulate` records
# every configuration's first seed before any second seed: a cut collection leaves a table
# that covers the whole grid once.
#
#     bash benchmarks/lm_table_lease.sh OUT_DIR SECONDS [suite tabulate arguments]
#
# SECONDS bounds the whole call: no chunk starts with less than MIN_CHUNK_SECONDS (default
# 60) left, and a chunk starts no new curve after CHUNK_SECONDS (default 240: a 480 s call in
# two chunks, as benchmarks/lm_cost_model.py prices it; a curve begun runs to its end, at
# most ~15 s on an H100). TABLE (default
# results/tables/small_lm.parquet) is where the table is recorded; TASK (default small_lm)
# which task records it (the CPU test uses the text classifier, whose tiny curves take
# milliseconds after a ~4 s start where the small LM's take ~10 s each: it tests the chunks,
# not a task). Where the carried `.whl` holds ../shared/wheels-py312 (a GPU machine has no
# registry), they are installed first.
#
# On a lent GPU (data carried in `.data`, wheels in `.whl`; see docs/small-lm-table.md):
#     SUITE_GIT_SHA=<commit> bash benchmarks/lm_table_lease.sh "$OUT" 480 --workers 4 --devices cuda:0
# On the CPU at tiny scale (tests/test_lm_lease.py runs it with TASK=text_classifier):
#     TABLE=/tmp/t.parquet bash benchmarks/lm_table_lease.sh /tmp/out 20 --scale tiny --executor inprocess
set -euo pipefail
out=${1:?usage: lm_table_lease.sh OUT_DIR SECONDS [suite tabulate arguments]}
seconds=${2:?usage: lm_table_lease.sh OUT_DIR SECONDS [suite tabulate arguments]}
shift 2
table=${TABLE:-results/tables/small_lm.parquet}
task=${TASK:-small_lm}
chunk=${CHUNK_SECONDS:-240}
min_chunk=${MIN_CHUNK_SECONDS:-60}
start=$SECONDS  # the whole call, installs included
mkdir -p "$out"
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
[ -d .data ] && export SUITE_DATA_DIR=${SUITE_DATA_DIR:-$PWD/.data}

table_complete() {  # exit 0 when the table holds every curve of its grid
    python3 -c "import sys; from suite.tables import read_table
sys.exit(0 if read_table(sys.argv[1]).complete else 1)" "$table"
}

status=0
while :; do  # a complete table is never rewritten: tabulate says so and records nothing
    left=$((seconds - (SECONDS - start)))
    ((left >= min_chunk)) || break
    limit=$((left < chunk ? left : chunk))
    echo "== chunk: start no new curve after ${limit} s ($((SECONDS - start)) s into the call)"
    python3 -m suite.cli tabulate --task "$task" --seeds 2 --out "$table" \
        --time-limit "$limit" "$@" || status=$?
    # back after every chunk, whatever it did: what it recorded is safe under OUT_DIR
    for f in "$table" "${table%.parquet}.rows.jsonl"; do
        [ ! -f "$f" ] || cp "$f" "$out/"
    done
    ((status == 0)) || break
    ! table_complete || break
done
echo "== $((SECONDS - start)) s; $(python3 -c "import sys; from suite.tables import read_table
t = read_table(sys.argv[1]); print(f'{t.meta[\"recorded\"]}/{t.meta[\"configs\"] * t.meta[\"seeds\"]} curves')" "$table" 2> /dev/null || echo 'no table yet')"
exit "$status"
