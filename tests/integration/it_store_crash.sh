#!/usr/bin/env bash
# The SQLite store loses no acknowledged write when its process is killed: a writer (test_store
# --writer) prints each write after kp_store_create/update/delete returned; it is SIGKILLed at
# random moments, and after each kill test_store --check reopens the store and checks that every
# acknowledged write is in the history at its revision with its value, revisions are dense and
# keep increasing across restarts, and SQLite's integrity_check passes.
# (A process crash, not a power cut: the fsync half of durability is SQLite's synchronous=FULL.)
. "$(dirname "$0")/lib.sh"

TEST_STORE=${KPKI_TEST_STORE:-}
[ -n "$TEST_STORE" ] && [ -x "$TEST_STORE" ] || skip "KPKI_TEST_STORE (the test_store program) is not set"

acked_at_least() { [ "$(wc -l <"$2")" -ge "$1" ]; }

db=$WORK/store.db
acks=()
total=0
for round in $(seq 1 10); do
    ack=$WORK/acks.$round
    acks+=("$ack")
    "$TEST_STORE" --writer "$db" 1000000 >"$ack" 2>"$WORK/writer.err" &
    pid=$!
    CHILD_PIDS+=("$pid")
    if [ "$round" -eq 1 ]; then
        sleep 0.02 # possibly while it creates the schema
    else
        # At least 15 writes first, so the rounds add up to over 100 however slow the disk's
        # fsync is today; then a kill at a random moment.
        wait_for 60 acked_at_least 15 "$ack" ||
            fail "round $round: the writer acknowledged $(wc -l <"$ack") writes in 60 s"
        sleep "$(printf '0.%03d' $((RANDOM % 600)))"
    fi
    kill -9 "$pid"
    status=0
    wait "$pid" 2>/dev/null || status=$?
    [ "$status" -eq 137 ] || { cat "$WORK/writer.err"; fail "round $round: the writer exited with $status before the kill"; }
    "$TEST_STORE" --check "$db" "${acks[@]}" >"$WORK/check.out" 2>&1 ||
        { cat "$WORK/check.out"; fail "round $round: the store lost acknowledged writes"; }
    count=$(wc -l <"$ack")
    total=$((total + count))
    pass "round $round: killed after $count acknowledged writes; $(cat "$WORK/check.out")"
done
[ "$total" -gt 100 ] || fail "only $total writes were acknowledged in all: the test proved little"

# A clean run after all that: the writer finishes, the store closes, the checker agrees.
"$TEST_STORE" --writer "$db" 50 >"$WORK/acks.final" 2>"$WORK/writer.err" ||
    { cat "$WORK/writer.err"; fail "a clean writer run failed after the crashes"; }
"$TEST_STORE" --check "$db" "${acks[@]}" "$WORK/acks.final" >"$WORK/check.out" 2>&1 ||
    { cat "$WORK/check.out"; fail "the final check failed"; }
pass "a clean run continues the revisions: $(cat "$WORK/check.out")"
