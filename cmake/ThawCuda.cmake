# THAW_CUDA: AUTO builds the CUDA backend when nvcc and the toolkit are found, ON requires them, OFF skips.
# Sets THAW_WITH_CUDA and THAW_BACKENDS_SUFFIX. Default architectures: sm_90 (Hopper: the lent H100/H200)
# as real code plus compute_90 PTX so newer cards JIT; override with -DCMAKE_CUDA_ARCHITECTURES=...

set(THAW_WITH_CUDA OFF)
set(THAW_BACKENDS_SUFFIX "")
string(TOUPPER "${THAW_CUDA}" _thaw_cuda)
if(NOT _thaw_cuda MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "thaw: THAW_CUDA must be AUTO, ON or OFF (got '${THAW_CUDA}')")
endif()

if(NOT _thaw_cuda STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES "90-real;90-virtual")
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit QUIET)
  endif()
  if(CMAKE_CUDA_COMPILER AND CUDAToolkit_FOUND)
    set(THAW_WITH_CUDA ON)
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
