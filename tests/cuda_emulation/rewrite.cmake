# Turns a .cu file's kernel launches, name<<<grid, block>>>(args);, into emu_launch(grid, block, [&] {
# name(args); }); for tests/cuda_emulation/cuda_runtime.h. cmake -DIN=file.cu -DOUT=file.cpp -P rewrite.cmake
file(READ "${IN}" source)
string(REGEX REPLACE "([A-Za-z_][A-Za-z0-9_]*)<<<([^;]*), ([A-Za-z0-9_]+)>>>\\(([^;]*)\\);"
                     "emu_launch(\\2, \\3, [&] { \\1(\\4); });" rewritten "${source}")
if(rewritten STREQUAL source)
  message(FATAL_ERROR "${IN}: no kernel launch found to rewrite")
endif()
file(WRITE "${OUT}" "${rewritten}")
