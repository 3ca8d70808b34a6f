# THAW_CUDNN: cuDNN for `thaw bench kernels` only (the reference thaw's kernels are checked and timed
# against). AUTO uses it when found, ON requires it, OFF skips it. It is linked into the thaw-bench-kernels
# executable alone (the target thaw::cudnn), never into libthaw or the thaw binary that trains.
# Looked for in THAW_CUDNN_ROOT first (a prefix with include/cudnn.h and lib/libcudnn.so*, e.g. a PyTorch
# environment's site-packages/nvidia/cudnn), then the CUDA toolkit, then the system folders (Ubuntu's
# packages: /usr/include/x86_64-linux-gnu/cudnn.h). Sets THAW_WITH_CUDNN and THAW_CUDNN_VERSION.

set(THAW_CUDNN AUTO CACHE STRING "cuDNN for thaw bench kernels: AUTO (when found), ON (required), OFF")
set_property(CACHE THAW_CUDNN PROPERTY STRINGS AUTO ON OFF)
set(THAW_CUDNN_ROOT "" CACHE PATH "Where to look first for cuDNN (a prefix with include/ and lib/)")

set(THAW_WITH_CUDNN OFF)
set(THAW_CUDNN_VERSION "")
string(TOUPPER "${THAW_CUDNN}" _thaw_cudnn)
if(NOT _thaw_cudnn MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "thaw: THAW_CUDNN must be AUTO, ON or OFF (got '${THAW_CUDNN}')")
endif()

if(NOT _thaw_cudnn STREQUAL "OFF" AND THAW_WITH_CUDA AND NOT THAW_CUDA_EMULATION)
  find_path(_thaw_cudnn_include cudnn.h
            HINTS ${THAW_CUDNN_ROOT}/include ${CUDAToolkit_INCLUDE_DIRS}
            PATH_SUFFIXES x86_64-linux-gnu NO_CACHE)
  # Wheels (nvidia-cudnn-cu12/cu13) ship libcudnn.so.9 without the libcudnn.so link.
  find_library(_thaw_cudnn_library NAMES cudnn libcudnn.so.9
               HINTS ${THAW_CUDNN_ROOT}/lib ${THAW_CUDNN_ROOT}/lib64 ${CUDAToolkit_LIBRARY_DIR}
               PATH_SUFFIXES x86_64-linux-gnu NO_CACHE)
  if(_thaw_cudnn_include AND _thaw_cudnn_library)
    set(_thaw_cudnn_version_h "${_thaw_cudnn_include}/cudnn_version.h")
    if(EXISTS "${_thaw_cudnn_version_h}")
      file(STRINGS "${_thaw_cudnn_version_h}" _thaw_cudnn_defines REGEX "^#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) ")
      foreach(_part MAJOR MINOR PATCHLEVEL)
        string(REGEX MATCH "CUDNN_${_part} ([0-9]+)" _match "${_thaw_cudnn_defines}")
        set(_thaw_cudnn_${_part} "${CMAKE_MATCH_1}")
      endforeach()
      set(THAW_CUDNN_VERSION "${_thaw_cudnn_MAJOR}.${_thaw_cudnn_MINOR}.${_thaw_cudnn_PATCHLEVEL}")
    endif()
    if(THAW_CUDNN_VERSION VERSION_LESS 8.0)
      message(WARNING "thaw: cuDNN at ${_thaw_cudnn_include} has version '${THAW_CUDNN_VERSION}'; thaw bench "
                      "kernels needs cuDNN 8 or 9. Not using it.")
    else()
      set(THAW_WITH_CUDNN ON)
      add_library(thaw_cudnn INTERFACE)
      add_library(thaw::cudnn ALIAS thaw_cudnn)
      target_include_directories(thaw_cudnn SYSTEM INTERFACE "${_thaw_cudnn_include}")
      target_link_libraries(thaw_cudnn INTERFACE "${_thaw_cudnn_library}")
      message(STATUS "thaw: cuDNN ${THAW_CUDNN_VERSION} for thaw bench kernels: ${_thaw_cudnn_library}")
    endif()
  endif()
endif()

if(NOT THAW_WITH_CUDNN)
  if(_thaw_cudnn STREQUAL "ON")
    message(FATAL_ERROR "thaw: THAW_CUDNN=ON but no usable cuDNN was found (CUDA built: ${THAW_WITH_CUDA}). "
                        "Install it (Ubuntu: libcudnn9-dev-cuda-13), or point -DTHAW_CUDNN_ROOT at a folder "
                        "with include/cudnn.h and lib/libcudnn.so.9 (a PyTorch environment's "
                        "site-packages/nvidia/cudnn), or configure with -DTHAW_CUDNN=OFF.")
  elseif(THAW_WITH_CUDA AND NOT _thaw_cudnn STREQUAL "OFF")
    message(STATUS "thaw: cuDNN not found: thaw bench kernels will check against thaw's CPU backend")
  endif()
endif()
