# Turns every kernel launch of a .cu or .cuh file, name<<<config>>>(args); or name<tmpl><<<config>>>(args);
# (config being grid, block[, shared bytes, stream]; the statement may span lines), into
# emu_launch([&] { name(args); }, config); for tests/cuda_emulation/cuda_runtime.h. A file without launches
# is copied as it is.
#   cmake -DIN=file.cu -DOUT=file.cpp -P rewrite.cmake
file(READ "${IN}" original)
string(REGEX REPLACE "([A-Za-z_][A-Za-z0-9_:]*(<[^;<>]*>)?)[ \t\r\n]*<<<([^;]*)>>>\\(([^;]*)\\);"
                     "emu_launch([&] { \\1(\\4); }, \\3);" rewritten "${original}")
if(rewritten MATCHES "<<<")
  message(FATAL_ERROR "${IN}: a kernel launch that rewrite.cmake cannot read (it must be one statement, "
                      "name<<<config>>>(args);)")
endif()
file(WRITE "${OUT}" "${rewritten}")
