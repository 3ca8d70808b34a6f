// JPEG decoding with libjpeg(-turbo) (data/jpeg_decode.h).
//
// libjpeg reports a fatal error by calling error_exit, whose default prints and calls exit(). thaw installs
// its own error manager: error_exit formats the message and longjmps back to the setjmp in read_pixels,
// which returns false; decode_jpeg_libjpeg then destroys the decompressor and throws thaw::Error. No C++
// object with a destructor lives in read_pixels' frame (the longjmp would skip it): the pixels belong to the
// caller. Warnings (emit_message with level -1) are not printed: the end of the data reached before the end
// of the image (JWRN_JPEG_EOF, after which libjpeg would pad with gray) is remembered and becomes a
// "truncated" error; other warnings leave the image as libjpeg recovered it, which is what Pillow gives too.
#include "data/jpeg_decode.h"

#include <algorithm>
#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE and size_t declared first

#include <jerror.h>
#include <jpeglib.h>

#include "core/error.h"

#if !defined(MEM_SRCDST_SUPPORTED) && JPEG_LIB_VERSION < 80
#error \
    "thaw needs jpeg_mem_src (libjpeg-turbo, or libjpeg >= 8); configure with -DTHAW_JPEG=OFF to use stb_image"
#endif

namespace thaw::data {
namespace {

constexpr uint64_t kMaxPixels = kMaxImagePixels;  // Pillow's decompression-bomb limit (data/image.h)

struct ErrorManager {
  jpeg_error_mgr pub;  // first member: libjpeg holds a jpeg_error_mgr* to this struct
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool ran_out_of_data;
};

void on_error_exit(j_common_ptr cinfo) {
  ErrorManager* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void on_emit_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace messages
  ErrorManager* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  if (cinfo->err->msg_code == JWRN_JPEG_EOF) err->ran_out_of_data = true;
  ++cinfo->err->num_warnings;
}

// Pillow's MULDIV255: a * b / 255 rounded to nearest, for a, b in 0..255.
inline int mul_div_255(int a, int b) {
  const int t = a * b + 128;
  return (t + (t >> 8)) >> 8;
}

// In place: n pixels of libjpeg's CMYK (Adobe's inverted convention, 4 bytes each) become n RGB pixels
// (3 bytes each) at the start of the same buffer, as Pillow's "CMYK;I" unpacking and CMYK -> RGB do.
void inverted_cmyk_to_rgb(uint8_t* pixels, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* in = pixels + 4 * i;
    const int k = in[3];  // = 255 - Pillow's K
    const int r = k - mul_div_255(255 - in[0], k), g = k - mul_div_255(255 - in[1], k),
              b = k - mul_div_255(255 - in[2], k);
    uint8_t* out = pixels + 3 * i;  // out <= in: writing never overtakes reading
    out[0] = uint8_t(r), out[1] = uint8_t(g), out[2] = uint8_t(b);
  }
}

// Decodes into `image` (sized here). Returns false after a libjpeg error (err.message says which) or when
// the image is larger than kMaxPixels (err.message empty). `image` lives in the caller's frame, so the
// longjmp skips no destructor.
bool read_pixels(jpeg_decompress_struct& cinfo, ErrorManager& err, const uint8_t* bytes, size_t size,
                 Image& image) {
  if (setjmp(err.jump)) return false;
  jpeg_mem_src(&cinfo, bytes, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;  // libjpeg converts YCbCr and grayscale to RGB itself
  cinfo.dct_method = JDCT_ISLOW;                      // Pillow's settings (both libjpeg's defaults)
  cinfo.do_fancy_upsampling = TRUE;
  cinfo.scale_num = cinfo.scale_denom = 1;
  if (uint64_t(cinfo.image_width) * cinfo.image_height > kMaxPixels) return false;
  jpeg_start_decompress(&cinfo);
  const size_t width = cinfo.output_width, height = cinfo.output_height;
  const size_t row_bytes = width * size_t(cinfo.output_components);
  image.height = int64_t(height);
  image.width = int64_t(width);
  image.pixels.resize(row_bytes * height);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW rows[16];
    const size_t first = cinfo.output_scanline;
    const size_t count = std::min<size_t>(16, height - first);
    for (size_t r = 0; r < count; ++r)
      rows[r] = image.pixels.data() + (first + r) * row_bytes;
    jpeg_read_scanlines(&cinfo, rows, JDIMENSION(count));
  }
  jpeg_finish_decompress(&cinfo);
  if (cmyk) {
    inverted_cmyk_to_rgb(image.pixels.data(), width * height);
    image.pixels.resize(width * height * 3);
  }
  return true;
}

}  // namespace

Image decode_jpeg_libjpeg(const uint8_t* bytes, size_t size, const std::string& name) {
  jpeg_decompress_struct cinfo;
  ErrorManager err;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = on_error_exit;
  err.pub.emit_message = on_emit_message;
  err.message[0] = '\0';
  err.ran_out_of_data = false;
  jpeg_create_decompress(&cinfo);
  struct Destroy {  // also on bad_alloc from the pixel buffer
    jpeg_decompress_struct* cinfo;
    ~Destroy() { jpeg_destroy_decompress(cinfo); }
  } destroy{&cinfo};

  Image image;
  if (!read_pixels(cinfo, err, bytes, size, image)) {
    if (err.message[0] == '\0') {
      fail("cannot decode image '{}' (jpeg): {} x {} pixels, more than the {} that Pillow opens", name,
           cinfo.image_width, cinfo.image_height, kMaxPixels);
    }
    fail("cannot decode image '{}' (jpeg): {}", name, err.message);
  }
  if (err.ran_out_of_data) {
    fail("cannot decode image '{}' (jpeg): truncated (the data ends before the image is complete)", name);
  }
  return image;
}

#define THAW_STRINGIFY_(x) #x
#define THAW_STRINGIFY(x) THAW_STRINGIFY_(x)
const char* libjpeg_version_name() {
#if defined(LIBJPEG_TURBO_VERSION)
  return "libjpeg-turbo " THAW_STRINGIFY(LIBJPEG_TURBO_VERSION);
#else
  return "libjpeg " THAW_STRINGIFY(JPEG_LIB_VERSION);
#endif
}

}  // namespace thaw::data
