# Finds thaw's dependencies, all from the distribution's packages (scripts/install-deps.sh installs them).
# Every missing one stops configuration with the package name to install.

function(thaw_require found what package)
  if(NOT ${found})
    message(FATAL_ERROR "thaw: ${what} not found. Install it with scripts/install-deps.sh "
                        "(Debian/Ubuntu package: ${package}).")
  endif()
endfunction()

find_package(fmt CONFIG QUIET)
thaw_require(fmt_FOUND "fmt" libfmt-dev)

set(HDF5_PREFER_PARALLEL OFF)
find_package(HDF5 COMPONENTS C QUIET)
thaw_require(HDF5_FOUND "HDF5 (C library)" libhdf5-dev)

find_package(OpenMP QUIET)
thaw_require(OpenMP_CXX_FOUND "OpenMP for C++" "gcc with libgomp (build-essential)")

# OpenBLAS, preferably its OpenMP build (libopenblas-openmp-dev): then the GEMMs and thaw's own OpenMP loops
# share one thread pool. With the pthreads build, two pools spin against each other on the same cores and
# the CPU kernels lose up to half their speed between a GEMM and the loop that follows it.
find_library(OpenBLAS_LIBRARIES NAMES openblas PATH_SUFFIXES openblas-openmp NO_CACHE)
find_path(OpenBLAS_INCLUDE_DIRS cblas.h PATH_SUFFIXES openblas-openmp NO_CACHE)
if(OpenBLAS_LIBRARIES MATCHES "openblas-openmp" AND OpenBLAS_INCLUDE_DIRS MATCHES "openblas-openmp")
  set(OpenBLAS_FOUND TRUE)
  set(THAW_OPENBLAS_VARIANT "OpenMP")
else()
  unset(OpenBLAS_LIBRARIES)
  unset(OpenBLAS_INCLUDE_DIRS)
  find_package(OpenBLAS CONFIG QUIET)
  if(NOT OpenBLAS_FOUND)
    find_library(OpenBLAS_LIBRARIES NAMES openblas PATH_SUFFIXES openblas-pthread openblas NO_CACHE)
    find_path(OpenBLAS_INCLUDE_DIRS cblas.h PATH_SUFFIXES openblas-pthread openblas NO_CACHE)
    if(OpenBLAS_LIBRARIES AND OpenBLAS_INCLUDE_DIRS)
      set(OpenBLAS_FOUND TRUE)
    endif()
  endif()
  set(THAW_OPENBLAS_VARIANT "pthreads (install libopenblas-openmp-dev for faster CPU kernels)")
endif()
thaw_require(OpenBLAS_FOUND "OpenBLAS" libopenblas-openmp-dev)
message(STATUS "thaw: OpenBLAS ${OpenBLAS_LIBRARIES}, threading: ${THAW_OPENBLAS_VARIANT}")

# Each library as an interface target, linked privately by the one layer that uses it (core: HDF5; kernels:
# OpenBLAS and OpenMP; data: stb_image and libjpeg; train: toml++).
add_library(thaw_hdf5 INTERFACE)
target_include_directories(thaw_hdf5 SYSTEM INTERFACE ${HDF5_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
target_link_libraries(thaw_hdf5 INTERFACE ${HDF5_C_LIBRARIES} ${HDF5_LIBRARIES})
target_compile_definitions(thaw_hdf5 INTERFACE ${HDF5_DEFINITIONS})
add_library(thaw_openblas INTERFACE)
target_include_directories(thaw_openblas SYSTEM INTERFACE ${OpenBLAS_INCLUDE_DIRS})
target_link_libraries(thaw_openblas INTERFACE ${OpenBLAS_LIBRARIES} OpenMP::OpenMP_CXX)

find_package(CLI11 CONFIG QUIET)
if(NOT CLI11_FOUND)
  find_path(CLI11_INCLUDE_DIR CLI/CLI.hpp)
  if(CLI11_INCLUDE_DIR)
    set(CLI11_FOUND TRUE)
    add_library(CLI11::CLI11 INTERFACE IMPORTED)
    target_include_directories(CLI11::CLI11 INTERFACE ${CLI11_INCLUDE_DIR})
  endif()
endif()
thaw_require(CLI11_FOUND "CLI11" libcli11-dev)

find_package(nlohmann_json CONFIG QUIET)
thaw_require(nlohmann_json_FOUND "nlohmann-json" nlohmann-json3-dev)

# stb_image (header-only; data/image.cpp compiles its implementation). Debian/Ubuntu: /usr/include/stb.
find_path(STB_INCLUDE_DIR stb/stb_image.h)
thaw_require(STB_INCLUDE_DIR "stb_image" libstb-dev)
add_library(thaw_image_codecs INTERFACE)  # stb_image, and libjpeg when cmake/ThawJpeg.cmake finds it
target_include_directories(thaw_image_codecs SYSTEM INTERFACE ${STB_INCLUDE_DIR})

# toml++ (header-only; the train command's config files). Debian/Ubuntu: /usr/include/toml++.
find_path(TOMLPP_INCLUDE_DIR toml++/toml.h)
thaw_require(TOMLPP_INCLUDE_DIR "toml++" libtomlplusplus-dev)
add_library(thaw_tomlplusplus INTERFACE)
target_include_directories(thaw_tomlplusplus SYSTEM INTERFACE ${TOMLPP_INCLUDE_DIR})
