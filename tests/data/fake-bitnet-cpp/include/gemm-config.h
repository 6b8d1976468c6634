/* a stand-in bitnet.cpp checkout for ternkit's tests (tests/test_bitnet_cpp.py) */
#define ACT_PARALLEL
#define ROW_BLOCK_SIZE 8
#define COL_BLOCK_SIZE 32
#define PARALLEL_SIZE 4
