# THAW_JPEG: which library decodes JPEG files (data/image.cpp).
#   AUTO (default): libjpeg-turbo through the libjpeg API (CMake's FindJPEG) when found, else stb_image;
#   ON: libjpeg required; OFF: stb_image.
# PNG, GIF and BMP are always decoded by stb_image. Sets THAW_WITH_LIBJPEG (data/CMakeLists.txt compiles
# jpeg_decode.cpp and tells image.cpp) and THAW_JPEG_DECODER (printed). Debian/Ubuntu package: libjpeg-dev
# (libjpeg62-turbo-dev on Debian 12, libjpeg-turbo8-dev on Ubuntu 24.04), the libjpeg-turbo that Debian's
# Pillow decodes with, so that thaw's pixels equal torchvision's.

set(THAW_JPEG AUTO CACHE STRING "JPEG decoder: AUTO (libjpeg-turbo when found, else stb_image), ON (libjpeg required), OFF (stb_image)")
set_property(CACHE THAW_JPEG PROPERTY STRINGS AUTO ON OFF)
string(TOUPPER "${THAW_JPEG}" _thaw_jpeg)
if(NOT _thaw_jpeg MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "thaw: THAW_JPEG must be AUTO, ON or OFF (got '${THAW_JPEG}')")
endif()

set(THAW_WITH_LIBJPEG OFF)
set(THAW_JPEG_DECODER "stb_image (THAW_JPEG=OFF)")
if(NOT _thaw_jpeg STREQUAL "OFF")
  find_package(JPEG QUIET)
  if(JPEG_FOUND)
    include(CheckSymbolExists)
    set(CMAKE_REQUIRED_INCLUDES ${JPEG_INCLUDE_DIRS})
    check_symbol_exists(LIBJPEG_TURBO_VERSION "stdio.h;jpeglib.h" THAW_HAVE_LIBJPEG_TURBO)
    unset(CMAKE_REQUIRED_INCLUDES)
    set(THAW_WITH_LIBJPEG ON)
    if(THAW_HAVE_LIBJPEG_TURBO)
      set(THAW_JPEG_DECODER "libjpeg-turbo (${JPEG_LIBRARIES})")
    else()
      set(THAW_JPEG_DECODER "libjpeg ${JPEG_VERSION}, not libjpeg-turbo: pixels may differ from Pillow's (${JPEG_LIBRARIES})")
    endif()
    target_link_libraries(thaw_image_codecs INTERFACE JPEG::JPEG)
  elseif(_thaw_jpeg STREQUAL "ON")
    message(FATAL_ERROR "thaw: THAW_JPEG=ON but libjpeg was not found. Install it with scripts/install-deps.sh "
                        "(Debian/Ubuntu package: libjpeg-dev), or configure with -DTHAW_JPEG=OFF for stb_image.")
  else()
    set(THAW_JPEG_DECODER "stb_image (libjpeg not found: install libjpeg-dev for faster, Pillow-exact JPEG decoding)")
  endif()
endif()
message(STATUS "thaw: JPEG decoder: ${THAW_JPEG_DECODER}")
