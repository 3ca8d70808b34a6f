// Name patterns for parameter and module names (torchvision's dotted names: "layer3.1.bn2.weight").
//
// A pattern is a glob where '*' matches any run of characters (dots included) and '?' one character.
// It matches a name when it matches the whole name, or a dotted prefix of it: "layer4" and "layer4.*"
// both match "layer4.0.conv1.weight"; "fc" matches "fc.weight" but not "fc2.weight"; "*.bn*.weight" matches
// every BatchNorm weight inside the blocks. Freeze masks and BatchNorm modes are set with these.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace thaw {

bool glob_match(std::string_view pattern, std::string_view text);  // whole-string glob
bool name_matches(std::string_view pattern, std::string_view name);
bool name_matches_any(const std::vector<std::string>& patterns, std::string_view name);

// "layer3, layer4,fc" -> {"layer3", "layer4", "fc"} (empty entries dropped).
std::vector<std::string> split_patterns(std::string_view comma_separated);

}  // namespace thaw
