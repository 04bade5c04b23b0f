# binding.gyp: node-gyp twin of CMakeLists.txt for the optional uwserve_native addon (same sources, same defines).
{
  "targets": [
    {
      "target_name": "uwserve_native",
      "sources": ["native/addon.cc", "native/loop_ref.cc", "native/memfd.cc", "native/quiet_stdout.cc", "native/gzip.cc", "native/thread_teardown.cc", "native/hub.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ],
      "cflags": ["-fvisibility=hidden"],
      "cflags_cc": ["-std=c++17", "-fno-exceptions", "-fvisibility=hidden"],
      "cflags_cc!": ["-fexceptions", "-std=gnu++17"],
      "xcode_settings": {
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "GCC_ENABLE_CPP_EXCEPTIONS": "NO",
        "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
        "MACOSX_DEPLOYMENT_TARGET": "10.15"
      },
      "msvs_settings": {
        "VCCLCompilerTool": { "ExceptionHandling": 0, "AdditionalOptions": ["/std:c++17"] }
      }
    }
  ]
}
