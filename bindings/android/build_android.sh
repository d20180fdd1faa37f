#!/usr/bin/env bash
# Build the Android library: libember_jni.so for arm64-v8a, armeabi-v7a and x86_64 with
# cargo-ndk, the Java classes, and an AAR (bindings/android/build/ember-android.aar).
#
# Needs (not available on the Linux CI machine, so CI runs the desktop-JVM test instead):
#   - Android NDK r26+ (ANDROID_NDK_HOME set); r28+ aligns to 16 KB by itself
#   - cargo install cargo-ndk
#   - rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android
#   - a JDK (javac, jar)
#
# 16 KB pages: Android 15+ devices may use 16 KB memory pages, and Google Play requires native
# libraries of apps targeting Android 15+ to have 16 KB aligned LOAD segments. The linker flags
# below make every segment 16 KB aligned (harmless on 4 KB devices). Check a build with
#   llvm-readelf -lW .../arm64-v8a/libember_jni.so | grep LOAD     # Align must be 0x4000
#
# Options (environment): EMBER_PROFILE (default mobile: size-optimized, see the root
# Cargo.toml), ANDROID_API (minimum API level, default 24), EMBER_SKIP_NATIVE=1 (only package
# what is already in jniLibs/).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

profile="${EMBER_PROFILE:-mobile}"
api="${ANDROID_API:-24}"
module="$here/ember-android"
jnilibs="$module/src/main/jniLibs"
build="$here/build"

if [ "${EMBER_SKIP_NATIVE:-0}" != 1 ]; then
  command -v cargo-ndk >/dev/null || { echo "cargo-ndk missing: cargo install cargo-ndk" >&2; exit 1; }
  page_flags="-C link-arg=-Wl,-z,max-page-size=16384 -C link-arg=-Wl,-z,common-page-size=16384"
  # Per-target variables, so host build scripts are not affected.
  export CARGO_TARGET_AARCH64_LINUX_ANDROID_RUSTFLAGS="$page_flags"
  export CARGO_TARGET_ARMV7_LINUX_ANDROIDEABI_RUSTFLAGS="$page_flags"
  export CARGO_TARGET_X86_64_LINUX_ANDROID_RUSTFLAGS="$page_flags"
  cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 -P "$api" -o "$jnilibs" \
    build --profile "$profile" -p ember-jni
  # Check the 64-bit libraries' LOAD segments are 16 KB aligned (what Play checks).
  readelf_bin="$(ls "${ANDROID_NDK_HOME:-/nonexistent}"/toolchains/llvm/prebuilt/*/bin/llvm-readelf 2>/dev/null | head -n 1)"
  if [ -n "$readelf_bin" ]; then
    for abi in arm64-v8a x86_64; do
      so="$jnilibs/$abi/libember_jni.so"
      if "$readelf_bin" -lW "$so" | awk '$1 == "LOAD" && $NF != "0x4000" { bad = 1 } END { exit bad }'; then
        echo "$abi: LOAD segments 16 KB aligned"
      else
        echo "$so: LOAD segments are not 16 KB aligned" >&2
        exit 1
      fi
    done
  else
    echo "warning: llvm-readelf not found under ANDROID_NDK_HOME: 16 KB alignment not checked" >&2
  fi
fi

# Java classes: Java 8 bytecode, which every Android toolchain (D8/R8) accepts.
rm -rf "$build" && mkdir -p "$build/classes" "$build/aar"
javac --release 8 -Xlint:-options -d "$build/classes" $(find "$module/src/main/java" -name '*.java')
jar cf "$build/aar/classes.jar" -C "$build/classes" .

# AAR = zip of AndroidManifest.xml, classes.jar, jni/<abi>/*.so, R.txt, proguard.txt.
# An AAR's manifest names its package (a Gradle module gets it from `namespace` instead).
cat > "$build/aar/AndroidManifest.xml" <<XML
<?xml version="1.0" encoding="utf-8"?>
<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="dev.ember">
    <uses-sdk android:minSdkVersion="$api" />
</manifest>
XML
cp "$module/consumer-rules.pro" "$build/aar/proguard.txt"
: > "$build/aar/R.txt"
found=0
for abi_dir in "$jnilibs"/*/; do
  [ -f "$abi_dir/libember_jni.so" ] || continue
  abi="$(basename "$abi_dir")"
  mkdir -p "$build/aar/jni/$abi"
  cp "$abi_dir/libember_jni.so" "$build/aar/jni/$abi/"
  found=$((found + 1))
done
[ "$found" -gt 0 ] || echo "warning: no libember_jni.so under $jnilibs: the AAR has no native code" >&2
(cd "$build/aar" && jar cfM "$build/ember-android.aar" .)
echo "$build/ember-android.aar ($found ABIs)"
