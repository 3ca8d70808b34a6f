// The arithmetic precision of a model's convolutions, chosen per run (`precision` in a train config,
// `--precision` on every command that runs a model), as PyTorch chooses with torch.backends.cudnn.allow_tf32
// and autocast:
//   fp32  exact float32: every product and sum in float32, the same bits as the CPU reference on integer
//         inputs (the parity tests run in fp32);
//   tf32  the convolution operands rounded to TF32 (float32's 8-bit exponent, 10-bit mantissa: round to
//         nearest, ties away from zero), multiplied on the tensor cores with float32 accumulation;
//   bf16  the operands rounded to bfloat16 (8-bit exponent, 7-bit mantissa: round to nearest even), float32
//         accumulation. So far activations are still stored in float32 (the rounding happens as the
//         convolution loads them); master weights, optimizer state, BatchNorm statistics and the loss are
//         float32 in every precision.
// Where it applies: the CUDA convolutions (forward, backward-data, backward-weight) on cards with tensor
// cores (compute capability 8.0 or newer; older cards compute fp32 and say so). The CPU backend is the
// reference and always computes float32, whatever the precision. Linear layers stay float32, as PyTorch's
// default matmul does.
#pragma once

#include <string>

namespace thaw {

enum class Precision { FP32, TF32, BF16 };

const char* precision_name(Precision precision);  // "fp32", "tf32", "bf16"
// "fp32" | "tf32" | "bf16"; anything else is an error that names the value and lists those three.
Precision parse_precision(const std::string& name);

// The value x takes as an operand in precision p, computed on the host exactly as the CUDA kernels round:
// round_to(FP32, x) == x; TF32 keeps the top 10 mantissa bits, ties away from zero (PTX cvt.rna.tf32.f32);
// BF16 keeps the top 7, ties to even (cvt.rn.bf16.f32). NaN stays NaN, infinities stay; a finite x that
// rounds past the largest finite value becomes an infinity. Tests use it to derive error bounds.
float round_to(Precision p, float x);

// The relative error one rounding to p may introduce: 2^-11 (TF32), 2^-8 (BF16), 2^-24 (FP32).
double unit_roundoff(Precision p);

}  // namespace thaw
