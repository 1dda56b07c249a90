/** Shapes of a 2-D convolution as the float layers use them (square kernels, symmetric padding). */
export interface ConvShape {
  N: number; C: number; H: number; W: number; O: number; k: number; stride: number; pad: number; OH: number; OW: number;
}

/**
 * x [N, C, H, W] -> cols [C*k*k][N*OH*OW]: one column per output pixel, so that the convolution is
 * W [O, C*k*k] x cols.
 */
export function im2col(x: Float32Array, s: ConvShape): Float32Array {
  const { N, C, H, W, k, stride, pad, OH, OW } = s;
  const P = N * OH * OW;
  const cols = new Float32Array(C * k * k * P);
  for (let c = 0; c < C; c++) {
    for (let kh = 0; kh < k; kh++) {
      for (let kw = 0; kw < k; kw++) {
        const row = ((c * k + kh) * k + kw) * P;
        for (let n = 0; n < N; n++) {
          const plane = (n * C + c) * H * W;
          for (let oh = 0; oh < OH; oh++) {
            const ih = oh * stride - pad + kh;
            const dst = row + (n * OH + oh) * OW;
            if (ih < 0 || ih >= H) continue;
            for (let ow = 0; ow < OW; ow++) {
              const iw = ow * stride - pad + kw;
              if (iw >= 0 && iw < W) cols[dst + ow] = x[plane + ih * W + iw];
            }
          }
        }
      }
    }
  }
  return cols;
}

/** The adjoint of im2col: sums column gradients back into dx [N, C, H, W]. */
export function col2im(cols: Float32Array, s: ConvShape): Float32Array {
  const { N, C, H, W, k, stride, pad, OH, OW } = s;
  const P = N * OH * OW;
  const dx = new Float32Array(N * C * H * W);
  for (let c = 0; c < C; c++) {
    for (let kh = 0; kh < k; kh++) {
      for (let kw = 0; kw < k; kw++) {
        const row = ((c * k + kh) * k + kw) * P;
        for (let n = 0; n < N; n++) {
          const plane = (n * C + c) * H * W;
          for (let oh = 0; oh < OH; oh++) {
            const ih = oh * stride - pad + kh;
            if (ih < 0 || ih >= H) continue;
            const src = row + (n * OH + oh) * OW;
            for (let ow = 0; ow < OW; ow++) {
              const iw = ow * stride - pad + kw;
              if (iw >= 0 && iw < W) dx[plane + ih * W + iw] += cols[src + ow];
            }
          }
        }
      }
    }
  }
  return dx;
}
