// The runtime API without the kernel language: the same stand-in (cuda_runtime.h).
#pragma once

#include "cuda_runtime.h"
