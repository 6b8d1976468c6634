/* empty: ggml-bitnet.h (ternkit stand-in) declares what the I2_S kernels use */
#pragma once
