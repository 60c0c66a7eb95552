/* Block and warp sums in double for the CUDA kernels: fixed trees over
 * fixed shapes, so a result never depends on timing (deterministic). */
#ifndef XFER_NN_CUDA_REDUCE_CUH
#define XFER_NN_CUDA_REDUCE_CUH

/* The sum over a warp's 32 lanes, in every lane. */
static __device__ __forceinline__ double warp_sum(double v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* The sum of v over a block of blockDim.x threads (a power of two, at most
 * 1024), returned in thread 0; s holds blockDim.x doubles. Every thread
 * of the block must call it. */
static __device__ __forceinline__ double block_sum(double v, double *s)
{
    s[threadIdx.x] = v;
    __syncthreads();
    for (unsigned h = blockDim.x / 2; h > 0; h >>= 1) {
        if (threadIdx.x < h)
            s[threadIdx.x] += s[threadIdx.x + h];
        __syncthreads();
    }
    return s[0];
}

#endif
