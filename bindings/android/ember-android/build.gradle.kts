// Android library module for ember. Include it in an app's Gradle build
// (settings.gradle.kts: include(":ember-android"); project(":ember-android").projectDir =
// file("path/to/ember/bindings/android/ember-android")) after building the native libraries
// into src/main/jniLibs with ../build_android.sh, or use the AAR that script writes.
plugins {
    id("com.android.library")
}

android {
    namespace = "dev.ember"
    compileSdk = 35
    defaultConfig {
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
        ndk {
            abiFilters += listOf("arm64-v8a", "armeabi-v7a", "x86_64")
        }
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_1_8
        targetCompatibility = JavaVersion.VERSION_1_8
    }
    // src/main/jniLibs/<abi>/libember_jni.so is packaged as is (already 16 KB aligned).
    packaging {
        jniLibs.useLegacyPackaging = false
    }
}
