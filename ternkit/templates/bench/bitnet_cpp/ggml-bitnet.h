/* ternkit's stand-in for bitnet.cpp's ggml headers: just what src/ggml-bitnet-mad.cpp uses from ggml
 * (the I2_S type tag and ggml_row_size), so its I2_S kernels build alone, without ggml. */
#pragma once
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum ggml_type { GGML_TYPE_I2_S = 36 };

/* I2_S rows are counted as one byte a weight by ggml; bitnet.cpp divides by four itself */
static inline size_t ggml_row_size(enum ggml_type, int64_t n) { return (size_t)n; }

extern "C" {
size_t quantize_i2_s(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *quant_weights);
void ggml_vec_dot_i2_i8_s(int n, float *s, size_t bs, const void *vx, size_t bx, const void *vy, size_t by, int nrc);
}
