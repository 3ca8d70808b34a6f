# Turns a .cu file's kernel launches, name<<<grid, block>>>(args); or name<<<grid, block, 0, stream>>>(args);,
# into emu_launch(grid, block, [&] { name(args); }); for tests/cuda_emulation/cuda_runtime.h.
#   cmake -DIN=file.cu -DOUT=file.cpp -P rewrite.cmake
file(READ "${IN}" original)
string(REGEX REPLACE "([A-Za-z_][A-Za-z0-9_]*)<<<([^;]*), ([A-Za-z0-9_]+), 0, [A-Za-z0-9_]+>>>\\(([^;]*)\\);"
                     "emu_launch(\\2, \\3, [&] { \\1(\\4); });" rewritten "${original}")
string(REGEX REPLACE "([A-Za-z_][A-Za-z0-9_]*)<<<([^;]*), ([A-Za-z0-9_]+)>>>\\(([^;]*)\\);"
                     "emu_launch(\\2, \\3, [&] { \\1(\\4); });" rewritten "${rewritten}")
if(rewritten STREQUAL original)
  message(FATAL_ERROR "${IN}: no kernel launch found to rewrite")
endif()
file(WRITE "${OUT}" "${rewritten}")
