// swift-tools-version:5.9
// Swift package over ember's C API (include/ember.h). The C library comes as an XCFramework
// (static libember.a per platform + ember.h + a module map exposing it as `EmberFFI`), built by
// build_xcframework.sh on macOS. The `Ember` target is the Swift-friendly API.
import PackageDescription

let package = Package(
    name: "Ember",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Ember", targets: ["Ember"]),
    ],
    targets: [
        .binaryTarget(name: "EmberFFI", path: "EmberFFI.xcframework"),
        .target(name: "Ember", dependencies: ["EmberFFI"], path: "Sources/Ember"),
        .testTarget(name: "EmberTests", dependencies: ["Ember"], path: "Tests/EmberTests"),
    ]
)
