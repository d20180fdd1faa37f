#!/usr/bin/env bash
# Tests of the C and Java bindings (issue 5), as CI runs them:
#   1. the C tests (bindings/c/tests/test_ember.c) built with -Wall -Wextra -Werror -std=c11,
#      linked against libember.so and against libember.a, each run under valgrind
#      (no leaks, no invalid accesses);
#   2. the C example (examples/c/chat.c) built the same way and run on one scripted turn;
#   3. the Java wrapper + desktop-JVM test, against the host-built libember_jni.so.
# Greedy ids are checked against the Rust API: the `ember` CLI writes them first.
# Needs: the SmolLM2 model (scripts/fetch_models.sh), gcc, valgrind, a JDK (javac/java >= 11).
# Prints a final line `N passed, M failed`; exits non-zero on any failure.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

model="models/SmolLM2-135M-Instruct.Q4_1.gguf"
rel="target/release"
work="target/bindings-test"
prompt="The capital of France is"
n_gen=8 # must match N_GENERATE in test_ember.c
passed=0
failed=0

fail() { echo "FAIL: $*" >&2; failed=$((failed + 1)); }
# Add the counts from a suite's closing `N passed, M failed` line.
add_counts() {
  local line p f
  line="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -n 1)"
  if [ -z "$line" ]; then fail "$2: no summary line (crashed?)"; return; fi
  p="${line%% passed*}"
  f="${line#*passed, }"; f="${f%% failed*}"
  passed=$((passed + p)); failed=$((failed + f))
}
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}

if [ ! -s "$model" ]; then
  fail "$model missing: run scripts/fetch_models.sh"
  finish
fi
for tool in gcc valgrind javac java python3; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done
[ "$failed" -eq 0 ] || finish

echo "== build (release)"
# One cargo invocation with the runtime crate in it: its default features (eval's regex,
# jsonschema, plotters) then unify the shared dependencies' features exactly as
# `cargo test --workspace` did, so wgpu/burn are not built a second time (~10 min on 2 cores).
if ! cargo build --release -p ember-c -p ember-jni -p ember; then
  fail "cargo build"
  finish
fi
mkdir -p "$work"

echo "== reference ids from the Rust API (ember run --json)"
if ! "$rel/ember" run -m "$model" -p "$prompt" -n "$n_gen" --temp 0 --ignore-eos -c 64 -t 1 --json \
  > "$work/reference.json"; then
  fail "ember run"
  finish
fi
python3 - "$work/reference.json" "$work/reference.txt" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
with open(sys.argv[2], "w") as f:
    f.write(" ".join(map(str, d["prompt_ids"])) + "\n")
    f.write(" ".join(map(str, d["generated_ids"])) + "\n")
PY
cat "$work/reference.txt"

cflags=(-Wall -Wextra -Werror -std=c11 -Iinclude)
# From `cargo rustc -p ember-c --crate-type staticlib -- --print native-static-libs`.
static_libs=(-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc)
vg=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,possible
  --suppressions=bindings/c/tests/valgrind.supp -q)

echo "== C tests"
if gcc "${cflags[@]}" bindings/c/tests/test_ember.c -o "$work/test_shared" \
  -L"$rel" -lember -lpthread -Wl,-rpath,"$root/$rel"; then
  echo "-- shared library, under valgrind"
  "${vg[@]}" "$work/test_shared" "$model" "$work/reference.txt" 2>&1 | tee "$work/test_shared.log"
  rc=${PIPESTATUS[0]}
  add_counts "$work/test_shared.log" "C tests (shared)"
  [ "$rc" -eq 0 ] || fail "C tests (shared) exited $rc (99: valgrind found errors)"
else
  fail "compile C tests (shared)"
fi
if gcc "${cflags[@]}" bindings/c/tests/test_ember.c -o "$work/test_static" \
  "$rel/libember.a" "${static_libs[@]}"; then
  echo "-- static library, under valgrind"
  "${vg[@]}" "$work/test_static" "$model" "$work/reference.txt" 2>&1 | tee "$work/test_static.log"
  rc=${PIPESTATUS[0]}
  add_counts "$work/test_static.log" "C tests (static)"
  [ "$rc" -eq 0 ] || fail "C tests (static) exited $rc (99: valgrind found errors)"
else
  fail "compile C tests (static)"
fi

echo "== C example"
if [ -f examples/c/chat.c ]; then
  if gcc "${cflags[@]}" examples/c/chat.c -o "$work/chat" -L"$rel" -lember -Wl,-rpath,"$root/$rel"; then
    if printf 'What is the capital of France?\n' | "$work/chat" "$model" 8 > "$work/chat.out" 2>&1 \
      && grep -q "assistant>" "$work/chat.out"; then
      passed=$((passed + 1))
    else
      cat "$work/chat.out"; fail "examples/c/chat.c run"
    fi
  else
    fail "compile examples/c/chat.c"
  fi
fi

echo "== Java wrapper on the desktop JVM"
jdir="$work/java"
rm -rf "$jdir" && mkdir -p "$jdir"
jsrc="bindings/android/ember-android/src/main/java"
if javac -Werror -Xlint:all -d "$jdir" $(find "$jsrc" -name '*.java') \
  bindings/android/tests/dev/ember/EmberJvmTest.java; then
  java -Xcheck:jni -Djava.library.path="$rel" -cp "$jdir" dev.ember.EmberJvmTest \
    "$model" "$work/reference.txt" 2>&1 | tee "$work/jvm.log"
  rc=${PIPESTATUS[0]}
  add_counts "$work/jvm.log" "JVM test"
  [ "$rc" -eq 0 ] || fail "JVM test exited $rc"
else
  fail "javac"
fi
echo "== Java example"
if [ -f examples/java/Chat.java ]; then
  if javac -Werror -d "$jdir" -cp "$jdir" examples/java/Chat.java \
    && printf 'What is the capital of France?\n' \
      | java -Djava.library.path="$rel" -cp "$jdir" Chat "$model" 8 > "$work/chat_java.out" 2>&1 \
    && grep -q "assistant>" "$work/chat_java.out"; then
    passed=$((passed + 1))
  else
    cat "$work/chat_java.out" 2>/dev/null; fail "examples/java/Chat.java"
  fi
fi

finish
