/* A stand-in for bitnet.cpp's src/ggml-bitnet-mad.cpp, written for ternkit's tests: plain C++ with the
 * I2_S contract as bitnet.cpp documents it, so ternkit.runtime.bitnet_cpp is tested without its source.
 * Weight j of 128-weight block i: bits (6 - 2 * (j / 32)) of byte 32 i + j % 32, code w + 1. vec_dot:
 * nrc tokens (y + t * by -> s[t * bs]) when nrc % PARALLEL_SIZE == 0, else nrc rows (x + r * bx / 4 -> s[r]). */
#include "ggml-bitnet.h"
#include "gemm-config.h"
#define QK_I2_S 128
size_t quantize_i2_s(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *) {
    uint8_t *out = (uint8_t *)dst;
    int64_t n = nrow * n_per_row;
    memset(out, 0, n / 4);
    for (int64_t e = 0; e < n; e++) {
        int code = fabsf(src[e]) < 1e-6f ? 1 : src[e] > 0 ? 2 : 0;
        int64_t j = e % 128;
        out[e / 128 * 32 + j % 32] |= (uint8_t)(code << (6 - 2 * (j / 32)));
    }
    return n / 4 + 32;
}
static float dot(int n, const uint8_t *x, const int8_t *y) {
    long acc = 0;
    for (int e = 0; e < n; e++)
        acc += ((x[e / 128 * 32 + e % 32] >> (6 - 2 * (e % 128 / 32))) & 3) * y[e];
    return (float)acc;
}
void ggml_vec_dot_i2_i8_s(int n, float *s, size_t bs, const void *vx, size_t bx, const void *vy, size_t by, int nrc) {
    const uint8_t *x = (const uint8_t *)vx;
    const int8_t *y = (const int8_t *)vy;
    for (int i = 0; i < nrc; i++) {
        if (nrc % PARALLEL_SIZE == 0)
            s[i * bs] = dot(n, x, y + i * by);
        else
            s[i] = dot(n, x + i * bx / 4, y);
    }
}
