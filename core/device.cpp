#include "core/device.h"

#include <charconv>

#include "core/error.h"

namespace thaw {

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : fmt::format("cuda:{}", index);
}

Device Device::parse(const std::string& name) {
  if (name == "cpu") return cpu();
  if (name == "cuda") return cuda(0);
  if (name.rfind("cuda:", 0) == 0) {
    int index = -1;
    const char* first = name.data() + 5;
    const char* last = name.data() + name.size();
    auto [end, ec] = std::from_chars(first, last, index);
    if (ec == std::errc() && end == last && index >= 0) return cuda(index);
  }
  fail("unknown device '{}': expected 'cpu', 'cuda' or 'cuda:N'", name);
}

}  // namespace thaw
