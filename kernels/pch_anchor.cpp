// Anchor for the shared LibTorch precompiled header (see the top CMakeLists.txt).
