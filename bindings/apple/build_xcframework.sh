#!/usr/bin/env bash
# Build EmberFFI.xcframework (static libember.a for iOS devices, the iOS simulator and macOS,
# with include/ember.h and module/module.modulemap as its headers), which Package.swift uses.
# Runs on macOS only (xcodebuild, lipo); CI cannot run it.
#
# Needs: Xcode command line tools, and
#   rustup target add aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios \
#                     aarch64-apple-darwin x86_64-apple-darwin
# Options (environment): EMBER_PROFILE (default mobile: size-optimized, see the root
# Cargo.toml), IPHONEOS_DEPLOYMENT_TARGET (default 15.0), MACOSX_DEPLOYMENT_TARGET (12.0).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

profile="${EMBER_PROFILE:-mobile}"
export IPHONEOS_DEPLOYMENT_TARGET="${IPHONEOS_DEPLOYMENT_TARGET:-15.0}"
export MACOSX_DEPLOYMENT_TARGET="${MACOSX_DEPLOYMENT_TARGET:-12.0}"
build="$here/build"
rm -rf "$build" "$here/EmberFFI.xcframework"
mkdir -p "$build/headers" "$build/ios" "$build/ios-sim" "$build/macos"

targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)
for t in "${targets[@]}"; do
  cargo build --profile "$profile" -p ember-c --target "$t"
done
lib() { echo "target/$1/$profile/libember.a"; }

cp include/ember.h "$here/module/module.modulemap" "$build/headers/"
cp "$(lib aarch64-apple-ios)" "$build/ios/libember.a"
# One library per platform: simulator and macOS slices are merged into fat archives.
lipo -create "$(lib aarch64-apple-ios-sim)" "$(lib x86_64-apple-ios)" -output "$build/ios-sim/libember.a"
lipo -create "$(lib aarch64-apple-darwin)" "$(lib x86_64-apple-darwin)" -output "$build/macos/libember.a"

xcodebuild -create-xcframework \
  -library "$build/ios/libember.a" -headers "$build/headers" \
  -library "$build/ios-sim/libember.a" -headers "$build/headers" \
  -library "$build/macos/libember.a" -headers "$build/headers" \
  -output "$here/EmberFFI.xcframework"
echo "$here/EmberFFI.xcframework"
echo "Test on macOS: EMBER_TEST_MODEL=$root/models/SmolLM2-135M-Instruct.Q4_1.gguf swift test --package-path $here"
