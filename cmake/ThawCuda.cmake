# THAW_CUDA: AUTO builds the CUDA backend when nvcc and the toolkit are found, ON requires them, OFF skips.
# EMULATE builds the CUDA backend without nvcc as C++ that runs on the CPU (tests/cuda_emulation/): for
# testing the CUDA code's logic on a machine without a GPU (scripts/test-emulated-cuda.sh), never for use.
# Sets THAW_WITH_CUDA, THAW_CUDA_EMULATION and THAW_BACKENDS_SUFFIX, and defines thaw_cuda_sources().
#
# CUDA architectures, unless -DCMAKE_CUDA_ARCHITECTURES=... (or the environment's CUDAARCHS) names them:
#   - a machine with a GPU (nvidia-smi answers) builds for that card only, e.g. 90 for an H100/H200:
#     machine code plus PTX of its compute capability;
#   - a machine without one builds THAW_CUDA_PORTABLE_ARCHITECTURES: machine code for sm_75 (T4, RTX 20xx),
#     sm_80 (A100, and by binary compatibility the sm_86 A10/RTX 30xx and sm_89 L4/RTX 40xx) and sm_90
#     (H100/H200), plus compute_90 PTX that newer cards (Blackwell) compile at load time.
# The choice is cached with the build directory; the configure step prints it.

set(THAW_WITH_CUDA OFF)
set(THAW_CUDA_EMULATION OFF)
set(THAW_BACKENDS_SUFFIX "")
set(THAW_CUDA_PORTABLE_ARCHITECTURES "75-real;80-real;90-real;90-virtual")
string(TOUPPER "${THAW_CUDA}" _thaw_cuda)
if(NOT _thaw_cuda MATCHES "^(AUTO|ON|OFF|EMULATE)$")
  message(FATAL_ERROR "thaw: THAW_CUDA must be AUTO, ON, OFF or EMULATE (got '${THAW_CUDA}')")
endif()

# The compute capabilities of this machine's GPUs as CMake architectures ("90", "80;90"), or "" without a
# GPU or a driver that answers.
function(thaw_detect_cuda_architectures out)
  set(_archs "")
  find_program(THAW_NVIDIA_SMI nvidia-smi)
  if(THAW_NVIDIA_SMI)
    execute_process(COMMAND "${THAW_NVIDIA_SMI}" --query-gpu=compute_cap --format=csv,noheader
                    RESULT_VARIABLE _result OUTPUT_VARIABLE _output ERROR_QUIET TIMEOUT 30)
    if(_result EQUAL 0)
      string(REGEX MATCHALL "[0-9]+\\.[0-9]+" _caps "${_output}")
      foreach(_cap IN LISTS _caps)
        string(REPLACE "." "" _arch "${_cap}")
        list(APPEND _archs "${_arch}")
      endforeach()
      list(REMOVE_DUPLICATES _archs)
      list(SORT _archs COMPARE NATURAL)
    endif()
  endif()
  set(${out} "${_archs}" PARENT_SCOPE)
endfunction()

if(_thaw_cuda STREQUAL "EMULATE")
  # The stand-ins for the CUDA runtime and cuBLAS take the place of the toolkit's targets.
  set(THAW_WITH_CUDA ON)
  set(THAW_CUDA_EMULATION ON)
  add_library(thaw_cuda_emulation INTERFACE)
  target_include_directories(thaw_cuda_emulation BEFORE INTERFACE ${CMAKE_SOURCE_DIR}/tests/cuda_emulation)
  # The emulation switches stacks by hand (no shadow stack may follow that); #pragma unroll is nvcc's.
  target_compile_options(thaw_cuda_emulation INTERFACE -fcf-protection=none -Wno-unknown-pragmas)
  add_library(CUDA::cudart ALIAS thaw_cuda_emulation)
  add_library(CUDA::cublas ALIAS thaw_cuda_emulation)
  set(THAW_BACKENDS_SUFFIX " + CUDA emulated on the CPU (THAW_CUDA=EMULATE: for tests, not for use)")
elseif(NOT _thaw_cuda STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(_thaw_archs_from "given, or cached by an earlier configure")
    elseif(DEFINED ENV{CUDAARCHS})
      set(_thaw_archs_from "from the CUDAARCHS environment variable")
    else()
      thaw_detect_cuda_architectures(_thaw_native_archs)
      if(_thaw_native_archs)
        set(_thaw_archs "${_thaw_native_archs}")
        set(_thaw_archs_from "the GPUs of this machine, from nvidia-smi")
      else()
        set(_thaw_archs "${THAW_CUDA_PORTABLE_ARCHITECTURES}")
        set(_thaw_archs_from "no GPU found: the portable default")
      endif()
      set(CMAKE_CUDA_ARCHITECTURES "${_thaw_archs}" CACHE STRING
          "CUDA architectures (thaw's default: this machine's GPU, else ${THAW_CUDA_PORTABLE_ARCHITECTURES})")
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit QUIET)
  endif()
  if(CMAKE_CUDA_COMPILER AND CUDAToolkit_FOUND)
    set(THAW_WITH_CUDA ON)
    message(STATUS "thaw: CUDA architectures ${CMAKE_CUDA_ARCHITECTURES} (${_thaw_archs_from})")
    # The .cu files are C++17: nvcc's front end rejects fmt's C++20 compile-time format checks, and CMake
    # 3.25 does not know nvcc 13's C++20 flag. So the core/ headers they include stay C++17-clean.
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    set(THAW_BACKENDS_SUFFIX " + CUDA (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES})")
  elseif(_thaw_cuda STREQUAL "ON")
    message(FATAL_ERROR "thaw: THAW_CUDA=ON but no usable CUDA toolkit was found (nvcc: '${CMAKE_CUDA_COMPILER}'). "
                        "Install the CUDA toolkit, put nvcc on PATH or set CMAKE_CUDA_COMPILER, "
                        "or configure with -DTHAW_CUDA=OFF for the CPU-only build.")
  else()
    message(STATUS "thaw: CUDA toolkit not found, building the CPU backend only (THAW_CUDA=AUTO)")
  endif()
endif()

# thaw_cuda_sources(<target> <file.cu>...): adds CUDA sources to a target. In an emulated build each .cu is
# rewritten (tests/cuda_emulation/rewrite.cmake: kernel launches become emu_launch calls) into
# ${CMAKE_BINARY_DIR}/cuda_emulated/<same path>.cpp and compiled as C++, and so is every .cuh beside it
# (a header may launch kernels too), found there before the original.
function(thaw_cuda_sources target)
  if(NOT THAW_CUDA_EMULATION)
    target_sources(${target} PRIVATE ${ARGN})
    return()
  endif()
  set(root ${CMAKE_BINARY_DIR}/cuda_emulated)
  set(rewrite ${CMAKE_SOURCE_DIR}/tests/cuda_emulation/rewrite.cmake)
  set(files "")
  foreach(source IN LISTS ARGN)
    get_filename_component(path ${source} ABSOLUTE)
    get_filename_component(dir ${path} DIRECTORY)
    file(GLOB headers ${dir}/*.cuh)
    list(APPEND files ${path} ${headers})
  endforeach()
  list(REMOVE_DUPLICATES files)
  foreach(path IN LISTS files)
    file(RELATIVE_PATH relative ${CMAKE_SOURCE_DIR} ${path})
    string(REGEX REPLACE "\\.cu$" ".cu.cpp" relative ${relative})
    add_custom_command(OUTPUT ${root}/${relative}
                       COMMAND ${CMAKE_COMMAND} -DIN=${path} -DOUT=${root}/${relative} -P ${rewrite}
                       DEPENDS ${path} ${rewrite}
                       COMMENT "CUDA emulation: ${relative}")
    target_sources(${target} PRIVATE ${root}/${relative})
  endforeach()
  target_include_directories(${target} BEFORE PRIVATE ${root})
endfunction()
